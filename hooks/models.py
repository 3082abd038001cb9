"""Outbound webhooks per site, personal chat addresses, and one row per delivery (the log and the queue)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils.translation import gettext, gettext_lazy

from core import clock
from core.inputs import no_line_breaks
from notify.events import KINDS


class Format(models.TextChoices):
    JSON = "json", gettext_lazy("Signed JSON (generic)")
    SLACK = "slack", gettext_lazy("Slack incoming webhook")
    TEAMS = "teams", gettext_lazy("Microsoft Teams workflow (Adaptive Card)")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


HTTP_URL = [URLValidator(schemes=["http", "https"]), no_line_breaks]


class Webhook(models.Model):
    """Where a site's events are posted. The body of a signed-JSON webhook carries an HMAC-SHA256
    signature made with `secret` (hooks/delivery.py says how to check it)."""

    site = models.ForeignKey("environments.Site", on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100, validators=[no_line_breaks])
    url = models.URLField(max_length=500, validators=HTTP_URL)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.JSON)
    secret = models.CharField(max_length=64, default=new_secret, editable=False)
    events = models.JSONField(
        default=list, blank=True, help_text=gettext_lazy("Event kinds to post; empty: all.")
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["site__code", "name"]

    def __str__(self) -> str:
        return f"{self.site.code}: {self.name}"

    @property
    def audit_site_code(self) -> str:
        return self.site.code

    def wants(self, kind: str) -> bool:
        return self.active and (not self.events or kind in self.events)


class ChatEndpoint(models.Model):
    """A person's own chat address (a Slack or Teams incoming webhook to a direct channel)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500, validators=HTTP_URL)
    format = models.CharField(
        max_length=10, choices=[(Format.SLACK, Format.SLACK.label), (Format.TEAMS, Format.TEAMS.label)]
    )

    def __str__(self) -> str:
        return f"chat of {self.user}"


class DeliveryState(models.TextChoices):
    QUEUED = "queued", gettext_lazy("Queued")
    SENT = "sent", gettext_lazy("Sent")
    FAILED = "failed", gettext_lazy("Failed")


class Delivery(models.Model):
    """One post: written in the transaction of the act it reports, sent after it, retried with backoff
    from the database (a Redis outage delays it, never loses it)."""

    webhook = models.ForeignKey(
        Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    url = models.URLField(max_length=500)
    format = models.CharField(max_length=10, choices=Format.choices)
    kind = models.CharField(max_length=40)
    body = models.TextField(help_text=gettext_lazy("The body exactly as posted (and signed)."))
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=clock.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="hooks_delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.url[:60]} ({self.state})"

    @property
    def kind_label(self) -> str:
        if self.kind == "webhook.test":
            return gettext("Test message")
        return str(getattr(KINDS.get(self.kind), "label", self.kind))
