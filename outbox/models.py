"""One row per mail: what to send, and how its delivery went."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy

from core import clock


class MailState(models.TextChoices):
    QUEUED = "queued", gettext_lazy("Queued")
    SENT = "sent", gettext_lazy("Sent")
    FAILED = "failed", gettext_lazy("Failed")


class Mail(models.Model):
    """A mail to deliver. Written inside the transaction of the act it reports (it exists if and only
    if that act committed); `outbox.services.deliver` sends it and records the outcome."""

    kind = models.CharField(
        max_length=60, blank=True, help_text=gettext_lazy('What the mail is, e.g. "approvals.request".')
    )
    to = models.JSONField(default=list, help_text=gettext_lazy("Recipient addresses."))
    from_email = models.CharField(
        max_length=254, blank=True, help_text=gettext_lazy("Empty: DEFAULT_FROM_EMAIL.")
    )
    subject = models.TextField()
    body = models.TextField()
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=MailState.choices, default=MailState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=clock.now)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    # The object the mail is about, for the audit trail (as audit.services.record describes objects).
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(
        max_length=64, blank=True, help_text=gettext_lazy("As the audit trail names it.")
    )
    object_pk = models.CharField(
        max_length=64, blank=True, help_text=gettext_lazy("The object's primary key.")
    )
    site_code = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["next_attempt_at", "id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outbox_mail_due_idx")]

    def __str__(self) -> str:
        return f"{self.subject[:80]} → {', '.join(self.to)[:80]}"
