"""Sites (plants) and their environments (tiers DEV, UAT, PROD) — PRODUCT.md E1–E9."""

from __future__ import annotations

import datetime
import zoneinfo

import semver
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import clock
from core.inputs import no_line_breaks
from core.roles import SITE_ROLE_PERMISSIONS, Role
from environments.calendar import window_span
from environments.pipelines import pipeline_problems


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not an IANA time zone (for example Europe/Berlin).") % {"value": repr(value)}
        )


def validate_semver(value: str) -> None:
    if not semver.Version.is_valid(value):
        raise ValidationError(
            _("%(value)s is not a semantic version (MAJOR.MINOR.PATCH).") % {"value": repr(value)}
        )


class RolloutRing(models.IntegerChoices):
    """Where a site goes in a release's rollout by default (E10): pilots first, the rest last."""

    PILOT = 0, gettext_lazy("Pilot (first)")
    LOW_RISK = 1, gettext_lazy("Low risk (second)")
    STANDARD = 2, gettext_lazy("Standard (last)")


class Site(models.Model):
    code = models.CharField(
        max_length=20,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Z0-9][A-Z0-9-]{1,19}$", gettext_lazy("2–20 capital letters, digits or dashes.")
            )
        ],
        help_text=gettext_lazy("Short code used in URLs and the API, e.g. BER1."),
    )
    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, validators=[validate_timezone], default="UTC")
    country = models.CharField(
        max_length=2, blank=True, help_text=gettext_lazy("ISO 3166-1 alpha-2, for public holidays.")
    )
    subdivision = models.CharField(
        max_length=10, blank=True, help_text=gettext_lazy("State or region code, e.g. BE or IL.")
    )
    # The plant calendar (W2, W4); windows, handovers and one-off freezes are rows below.
    block_fridays = models.BooleanField(
        default=True, help_text=gettext_lazy("Never deploy to PROD on a Friday.")
    )
    quarter_close_days = models.PositiveSmallIntegerField(
        default=10,
        help_text=gettext_lazy("Freeze the last N days of each quarter (0 = no quarter-close freeze, W4)."),
    )

    rollout_ring = models.PositiveSmallIntegerField(
        gettext_lazy("rollout ring"),
        choices=RolloutRing.choices,
        default=RolloutRing.STANDARD,
        help_text=gettext_lazy(
            "Its risk tier: a release reaches the pilot sites first, then the low-risk ones, then the "
            "rest, unless the release's rollout plan says otherwise."
        ),
    )

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
        "windows_enforced": True,
    },
}


class Environment(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="environments")
    tier = models.CharField(max_length=4, choices=Tier.choices)
    purpose = models.TextField(blank=True)
    data_policy = models.TextField(blank=True)
    access_policy = models.TextField(blank=True)
    sla = models.CharField(gettext_lazy("SLA"), max_length=200, blank=True)
    equipment_writes = models.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "Hooks may write to equipment. Only PROD may; DEV and UAT always run simulated."
        ),
    )
    data_refreshed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("When this environment's data was last refreshed from PROD."),
    )
    windows_enforced = models.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "Deployments must fit the site's calendar (on for PROD; DEV and UAT by choice)."
        ),
    )
    smoke_test_minutes = models.PositiveSmallIntegerField(
        default=15, help_text=gettext_lazy("Delay before the smoke test after applying (T+15, X3).")
    )
    rollback_budget_minutes = models.PositiveSmallIntegerField(
        default=15, help_text=gettext_lazy("Time kept free in the window for a rollback.")
    )
    refresh_every_days = models.PositiveSmallIntegerField(
        default=0,
        help_text=gettext_lazy(
            "UAT only: refresh its data from PROD this often (30 = monthly; 0 = by hand, E3)."
        ),
    )
    vm_name = models.CharField(
        gettext_lazy("virtual machine"),
        max_length=100,
        blank=True,
        help_text=gettext_lazy(
            "The hypervisor's name for the machine this environment runs on; when set, a PROD "
            "pipeline must snapshot it before the apply."
        ),
    )
    fingerprint = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text=gettext_lazy("Configuration fingerprint: version, schema, adapters."),
    )
    fingerprint_at = models.DateTimeField(null=True, blank=True, editable=False)
    pipeline = models.JSONField(
        default=dict,
        blank=True,
        help_text=gettext_lazy(
            "The deployment adapters for this environment (snapshot, backup, apply, smoke test); see "
            "releases/adapters.py. Empty: the release is recorded without touching a system."
        ),
    )

    class Meta:
        ordering = ["site__code", "tier"]
        constraints = [
            models.UniqueConstraint(fields=["site", "tier"], name="one_environment_per_tier"),
            models.CheckConstraint(
                condition=models.Q(tier="PROD") | models.Q(equipment_writes=False),
                name="only_prod_writes_equipment",
                violation_error_message=gettext_lazy("Only PROD may write to equipment."),
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

    @property
    def versions(self) -> dict[str, str]:
        """{product: version} for every product this environment runs, by product name (E9, R5).
        Reads `products`, so a prefetch of it keeps a page's queries constant."""
        return {row.product: row.version for row in sorted(self.products.all(), key=lambda r: r.product)}

    @property
    def active_version(self) -> str:
        """The one version shown where a single one is asked for (the API's `active_version`, E9):
        the version of the environment's product when it runs exactly one; with several, the
        version of the product updated last (ties: the last product name); "" when it runs none.
        Derived from the ProductVersion rows, which are the only record of what runs."""
        rows = list(self.products.all())
        if not rows:
            return ""
        return max(rows, key=lambda row: (row.updated_at, row.product)).version

    def clean(self) -> None:
        if self.equipment_writes and self.tier != Tier.PROD:
            raise ValidationError({"equipment_writes": _("Only PROD may write to equipment.")})

    def clean_fields(self, exclude=None) -> None:
        """The fields, and the pipeline as a whole (environments/pipelines.py): a PROD pipeline that
        lacks a snapshot, a backup or a smoke test is refused, each missing step named (X1, X2).
        Checked here rather than in clean() so that a form without the pipeline (the environment
        page) leaves it alone instead of failing on a field it does not show."""
        errors = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if exclude is None or "pipeline" not in exclude:
            problems = pipeline_problems(self.pipeline, self.tier, self.vm_name)
            if problems:
                errors.setdefault("pipeline", []).extend(ValidationError(text) for text in problems)
        if errors:
            raise ValidationError(errors)

    def snapshot(self) -> dict:
        """The fields an audit event records before and after a change."""
        return {
            "purpose": self.purpose,
            "data_policy": self.data_policy,
            "access_policy": self.access_policy,
            "sla": self.sla,
            "equipment_writes": self.equipment_writes,
            "active_version": self.active_version,
            "versions": self.versions,
            "windows_enforced": self.windows_enforced,
            "smoke_test_minutes": self.smoke_test_minutes,
            "rollback_budget_minutes": self.rollback_budget_minutes,
        }


DEFAULT_PRODUCT = "MES"  # the product an environment's version meant before it ran several


class ProductVersion(models.Model):
    """One product (MES, ERP, a label service…) an environment runs, at its own version (E9).

    The class of change (R5) and drift between tiers (E8) are per product: an ERP release is
    compared with the ERP that runs in PROD, never with the MES beside it.
    """

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="products")
    product = models.CharField(
        max_length=100, help_text=gettext_lazy("As a release names it, e.g. MES or ERP-interface.")
    )
    version = models.CharField(max_length=64, validators=[validate_semver])
    updated_at = models.DateTimeField(
        default=clock.now, help_text=gettext_lazy("When this version was recorded.")
    )

    class Meta:
        ordering = ["environment", "product"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "product"], name="one_version_per_product")
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.version}"

    @property
    def audit_site_code(self) -> str:
        return self.environment.site.code


# --- The plant calendar ---------------------------------------------------------------
class Weekday(models.IntegerChoices):
    MONDAY = 0, gettext_lazy("Monday")
    TUESDAY = 1, gettext_lazy("Tuesday")
    WEDNESDAY = 2, gettext_lazy("Wednesday")
    THURSDAY = 3, gettext_lazy("Thursday")
    FRIDAY = 4, gettext_lazy("Friday")
    SATURDAY = 5, gettext_lazy("Saturday")
    SUNDAY = 6, gettext_lazy("Sunday")


DEFAULT_WINDOWS = [
    (day, start, end)
    for day in (Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY)
    for start, end in (("09:00", "11:00"), ("14:00", "16:00"))
]
DEFAULT_HANDOVERS = ["06:00", "14:00", "22:00"]


class DeploymentWindow(models.Model):
    """A weekly slot in the site's local time when PROD may change (W1)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="windows")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    starts = models.TimeField(help_text=gettext_lazy("Local time at the site."))
    ends = models.TimeField(
        help_text=gettext_lazy(
            "Local time at the site; the deployment and its checks must end by then. 00:00 means midnight at "
            "the end of the day."
        )
    )

    class Meta:
        ordering = ["site", "weekday", "starts"]
        constraints = [
            # Ending at 00:00 is midnight at the end of the day, so a plant open round the clock has
            # no minute between one day's window and the next.
            models.CheckConstraint(
                condition=models.Q(ends__gt=models.F("starts")) | models.Q(ends=datetime.time(0)),
                name="window_ends_after_start",
                violation_error_message=gettext_lazy(
                    "A window ends after it starts on the same day, or at 00:00 for midnight."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {window_span(self.starts, self.ends)}"


class ShiftHandover(models.Model):
    """A shift change: nothing deploys within its buffer (W3)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="handovers")
    at = models.TimeField(help_text=gettext_lazy("Local time of the handover."))
    buffer_minutes = models.PositiveSmallIntegerField(
        default=30, help_text=gettext_lazy("Blocked before and after.")
    )

    class Meta:
        ordering = ["site", "at"]
        constraints = [models.UniqueConstraint(fields=["site", "at"], name="one_handover_per_time")]

    def __str__(self) -> str:
        return f"{self.at:%H:%M} ±{self.buffer_minutes} min"


class Freeze(models.Model):
    """A one-off freeze (peak season, an audit, a shutdown); without a site it holds for every site (W4)."""

    site = models.ForeignKey(
        Site,
        on_delete=models.CASCADE,
        related_name="freezes",
        null=True,
        blank=True,
        help_text=gettext_lazy("Empty: every site."),
    )
    name = models.CharField(max_length=100)
    reason = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="freeze_ends_after_start",
                violation_error_message=gettext_lazy("A freeze ends after it starts."),
            ),
        ]
        indexes = [models.Index(fields=["ends_at"], name="freeze_ends_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_site_code(self) -> str:
        return self.site.code if self.site_id else ""


# --- The change calendar's ICS feed --------------------------------------------
class CalendarFeedToken(models.Model):
    """A user's secret for subscribing to the ICS feeds without a session (Outlook, Google Calendar).

    Only the SHA-256 of the token is stored: the token is shown once, right after it is made, and
    making a new one replaces the hash, so the old token stops working at once.
    """

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="calendar_feed_token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"calendar feed token of {self.user}"


# --- Computed evidence ---------------------------------------------------------------------
class MaskMethod(models.TextChoices):
    FAKE_NAME = "fake_name", gettext_lazy("Fake name")
    HASH = "hash", gettext_lazy("Hash")
    NULL = "null", gettext_lazy("Null")
    FIXED = "fixed", gettext_lazy("Fixed value")


class MaskingRule(models.Model):
    """How one column of PROD's data is masked before UAT may read it (E3, E6, C4)."""

    site = models.ForeignKey(
        Site,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="masking_rules",
        help_text=gettext_lazy("Empty: every site."),
    )
    table = models.CharField(
        max_length=63,
        validators=[
            RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", gettext_lazy("A table name: letters, digits, _."))
        ],
    )
    column = models.CharField(
        max_length=63,
        validators=[
            RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", gettext_lazy("A column name: letters, digits, _."))
        ],
    )
    method = models.CharField(max_length=10, choices=MaskMethod.choices)
    value = models.CharField(max_length=200, blank=True, help_text=gettext_lazy("For 'fixed value'."))

    class Meta:
        ordering = ["table", "column"]
        constraints = [
            models.UniqueConstraint(fields=["site", "table", "column"], name="one_mask_per_column")
        ]

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.get_method_display()}"

    def sql_expression(self, vendor: str) -> str:
        column = f'"{self.column}"'
        if self.method == MaskMethod.NULL:
            return "NULL"
        if self.method == MaskMethod.FIXED:
            return "%s" if vendor == "postgres" else "?"
        digest = f"pcc_hash({column})" if vendor == "sqlite" else f"substr(md5({column}::text), 1, 16)"
        if self.method == MaskMethod.HASH:
            return f"CASE WHEN {column} IS NULL THEN NULL ELSE {digest} END"
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE 'Person ' || substr({digest}, 1, 6) END"

    def params(self) -> tuple:
        return (self.value,) if self.method == MaskMethod.FIXED else ()


class RunState(models.TextChoices):
    QUEUED = "queued", gettext_lazy("Queued")
    RUNNING = "running", gettext_lazy("Running")
    PASSED = "passed", gettext_lazy("Passed")
    FAILED = "failed", gettext_lazy("Failed")


class RefreshRun(models.Model):
    """A copy of PROD's data into UAT, masked before UAT could read it (E3, E6, C4)."""

    source = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="refreshes")
    state = models.CharField(max_length=8, choices=RunState.choices, default=RunState.QUEUED)
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    masked = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"refresh {self.source} → {self.target} ({self.state})"

    @property
    def audit_object_id(self) -> str:
        return str(self.target)

    @property
    def audit_site_code(self) -> str:
        return self.target.site.code


# --- Time-bound role grants (access reviews) ------------------------------------------------
class TimedRoleGrant(models.Model):
    """A role held until `expires_at`, then no longer: elevated access (the Admin role, say) granted
    for a task, Annex 11 §12. It sits beside the lasting grants (role groups, a site's object
    permissions) and `access.role_map` reads it with its expiry, so an expired grant stops counting
    at once; the periodic sweep (accounts/tasks.py) only deletes the row and audits it."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="timed_role_grants")
    role = models.CharField(max_length=32, choices=[(role.value, role.label) for role in Role])
    site = models.ForeignKey(
        Site,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="timed_role_grants",
        help_text=gettext_lazy("Empty: the role is held at every site."),
    )
    expires_at = models.DateTimeField(
        db_index=True, help_text=gettext_lazy("The role stops counting at this moment (UTC).")
    )
    granted_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    granted_at = models.DateTimeField(editable=False)

    class Meta:
        ordering = ["expires_at", "id"]
        verbose_name = gettext_lazy("time-bound role grant")
        indexes = [models.Index(fields=["user", "expires_at"], name="timed_grant_user_idx")]

    def __str__(self) -> str:
        where = self.site.code if self.site_id else "every site"
        until = self.expires_at.astimezone(datetime.UTC) if self.expires_at else None
        return f"{Role(self.role).label} for {self.user} at {where} until {until:%Y-%m-%d %H:%M} UTC"

    @property
    def audit_site_code(self) -> str:
        return self.site.code if self.site_id else ""

    def clean(self) -> None:
        if self.expires_at is not None and self.expires_at <= clock.now():
            raise ValidationError({"expires_at": _("The expiry must be in the future.")})

    def describe(self) -> dict:
        return {
            "user": self.user.get_username(),
            "role": self.role,
            "site": self.site.code if self.site_id else None,
            "expires_at": self.expires_at,
        }


class ItemKind(models.TextChoices):
    LINE = "line", gettext_lazy("Production line")
    MODULE = "module", gettext_lazy("Module")
    INTERFACE = "interface", gettext_lazy("Interface")
    PRODUCT = "product", gettext_lazy("Product")


class ConfigurationItem(models.Model):
    """What a change can touch at a site, as a record (ITIL CMDB, kept small): its production lines,
    modules, interfaces and products. An RFC's impact names them; two RFCs naming the same item at
    one site in overlapping windows conflict (workflow/conflicts.py)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    name = models.CharField(
        max_length=100,
        validators=[
            RegexValidator(r"^[^\x00-\x1f\x7f]+$", gettext_lazy("No control characters or line breaks."))
        ],
    )
    description = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["site__code", "kind", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "kind", "name"], name="one_item_per_name")]
        verbose_name = gettext_lazy("configuration item")

    def __str__(self) -> str:
        return f"{self.site.code} {self.get_kind_display().lower()} {self.name}"

    @property
    def audit_site_code(self) -> str:
        return self.site.code


# --- Terminals: shop-floor clients report the version they run (issue 19, seed 002) ---------
class TerminalToken(models.Model):
    """The one secret a site's terminals report with (only its hash is kept; a new one replaces it)."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="terminal_token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Terminal token of {self.site.code}"


class Terminal(models.Model):
    """A client (MES terminal, label station, scanner PC …) and the version of a product it last
    said it runs. One row per environment, name and product; each report updates it."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="terminals")
    name = models.CharField(max_length=100)
    product = models.CharField(max_length=100)
    version = models.CharField(max_length=64, validators=[validate_semver])
    first_seen_at = models.DateTimeField(default=clock.now)
    reported_at = models.DateTimeField(default=clock.now)
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "name", "product"], name="terminal_unique_name")
        ]
        indexes = [models.Index(fields=["environment", "product", "version"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.product} {self.version})"


class SignalReading(models.Model):
    """The environment's readiness signals read at one moment (plant/signals.py): what the "Business
    signals ready" gate judges before PROD. Read by the worker every few minutes, by the deployment
    right before it touches PROD, and on demand from the environment page. Texts are records (English)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="signal_readings")
    taken_at = models.DateTimeField(default=clock.now)
    ok = models.BooleanField()
    readings = models.JSONField(default=list)  # [{"name", "adapter", "ok", "text", "value"}]
    trigger = models.CharField(max_length=20)  # "schedule", "deployment" or "request"

    class Meta:
        indexes = [models.Index(fields=["environment", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.environment} signals at {self.taken_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'not ready'})"


# --- The fidelity register: how faithfully an environment stands in for PROD (issue 19) -------
class DependencyKind(models.TextChoices):
    """How an environment has an external system: only `real` and `test endpoint` say much about PROD."""

    REAL = "real", gettext_lazy("Real")
    TEST_ENDPOINT = "test_endpoint", gettext_lazy("Test endpoint")
    SIMULATOR = "simulator", gettext_lazy("Simulator")
    REPLAY = "replay", gettext_lazy("Replay")
    ABSENT = "absent", gettext_lazy("Absent")


FAITHFUL_KINDS = frozenset({DependencyKind.REAL, DependencyKind.TEST_ENDPOINT})


class Criticality(models.TextChoices):
    LOW = "low", gettext_lazy("Low")
    MEDIUM = "medium", gettext_lazy("Medium")
    HIGH = "high", gettext_lazy("High")


class Dependency(models.Model):
    """One external system an environment talks to (ERP, WMS, a supplier API …) and how: real, a
    test endpoint, a simulator, a replay of recorded traffic, or not at all. An RFC names the
    dependencies it touches; the RFC page and the "Staging gaps accepted" gate read this register."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="dependencies")
    name = models.CharField(
        gettext_lazy("dependency"),
        max_length=60,
        validators=[no_line_breaks],
        help_text=gettext_lazy("The system, e.g. ERP, WMS, Supplier API, Identity, Historian, PLC gateway."),
    )
    kind = models.CharField(
        gettext_lazy("how this tier has it"), max_length=13, choices=DependencyKind.choices
    )
    criticality = models.CharField(
        gettext_lazy("criticality"), max_length=6, choices=Criticality.choices, default=Criticality.MEDIUM
    )
    note = models.CharField(gettext_lazy("note"), max_length=200, blank=True, validators=[no_line_breaks])

    class Meta:
        ordering = ["name"]
        verbose_name = gettext_lazy("dependency")
        verbose_name_plural = gettext_lazy("dependencies")
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "environment",
                name="dependency_unique_name",
                violation_error_message=gettext_lazy(
                    "This environment already lists a dependency of that name."
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def faithful(self) -> bool:
        return self.kind in FAITHFUL_KINDS

    def snapshot(self) -> dict:
        return {
            "dependency": self.name,
            "kind": self.kind,
            "criticality": self.criticality,
            "note": self.note,
        }
