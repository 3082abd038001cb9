"""Sites (plants) and their environments (tiers DEV, UAT, PROD) — PRODUCT.md E1–E9."""

from __future__ import annotations

import zoneinfo

import semver
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from changecontrol.roles import SITE_ROLE_PERMISSIONS


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (for example Europe/Berlin).")


def validate_semver(value: str) -> None:
    if not semver.Version.is_valid(value):
        raise ValidationError(f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH).")


class Site(models.Model):
    code = models.CharField(
        max_length=20,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9][A-Z0-9-]{1,19}$", "2–20 capital letters, digits or dashes.")],
        help_text="Short code used in URLs and the API, e.g. BER1.",
    )
    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, validators=[validate_timezone], default="UTC")
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2, for public holidays.")
    subdivision = models.CharField(max_length=10, blank=True, help_text="State or region code, e.g. BE or IL.")

    class Meta:
        ordering = ["code"]
        permissions = SITE_ROLE_PERMISSIONS

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def audit_site_code(self) -> str:
        return self.code

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Tier(models.TextChoices):
    DEV = "DEV", "DEV"
    UAT = "UAT", "UAT"
    PROD = "PROD", "PROD"


TIER_ORDER = {Tier.DEV: 0, Tier.UAT: 1, Tier.PROD: 2}

# Defaults from the change-and-release source (E2–E4).
TIER_DEFAULTS = {
    Tier.DEV: {
        "purpose": "The sandbox: developers build and break things here.",
        "data_policy": "Synthetic / dummy data only.",
        "access_policy": "Developers have full rights.",
        "sla": "None.",
    },
    Tier.UAT: {
        "purpose": "The mirror of PROD's configuration, where key users prove a change.",
        "data_policy": "Anonymised copy of PROD data, refreshed at least every 30 days.",
        "access_policy": "Developers read only; key users read/write.",
        "sla": "Business hours.",
    },
    Tier.PROD: {
        "purpose": "The live manufacturing environment.",
        "data_policy": "Live master data and daily transactions.",
        "access_policy": "Zero write access for developers; changes only by automated deployment or a system admin.",
        "sla": "24/7, production critical.",
    },
}


class Environment(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="environments")
    tier = models.CharField(max_length=4, choices=Tier.choices)
    purpose = models.TextField(blank=True)
    data_policy = models.TextField(blank=True)
    access_policy = models.TextField(blank=True)
    sla = models.CharField("SLA", max_length=200, blank=True)
    equipment_writes = models.BooleanField(
        default=False,
        help_text="Hooks may write to equipment. Only PROD may; DEV and UAT always run simulated (E5).",
    )
    active_version = models.CharField(max_length=64, blank=True, validators=[validate_semver])
    data_refreshed_at = models.DateTimeField(
        null=True, blank=True, help_text="When this environment's data was last refreshed from PROD."
    )

    class Meta:
        ordering = ["site__code", "tier"]
        constraints = [
            models.UniqueConstraint(fields=["site", "tier"], name="one_environment_per_tier"),
            models.CheckConstraint(
                condition=models.Q(tier="PROD") | models.Q(equipment_writes=False),
                name="only_prod_writes_equipment",
                violation_error_message="Only PROD may write to equipment (E5).",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.code} {self.tier}"

    @property
    def audit_site_code(self) -> str:
        return self.site.code

    @property
    def tier_rank(self) -> int:
        return TIER_ORDER[Tier(self.tier)]

    def clean(self) -> None:
        if self.equipment_writes and self.tier != Tier.PROD:
            raise ValidationError({"equipment_writes": "Only PROD may write to equipment (E5)."})

    def snapshot(self) -> dict:
        """The fields an audit event records before and after a change."""
        return {
            "purpose": self.purpose,
            "data_policy": self.data_policy,
            "access_policy": self.access_policy,
            "sla": self.sla,
            "equipment_writes": self.equipment_writes,
            "active_version": self.active_version,
        }
