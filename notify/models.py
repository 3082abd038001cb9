"""Who follows an RFC (watchers) and who asked not to hear about it (mutes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from core import clock


class WatchReason(models.TextChoices):
    AUTHOR = "author", gettext_lazy("Author")
    APPROVER = "approver", gettext_lazy("Approver")
    MENTIONED = "mentioned", gettext_lazy("Mentioned in a comment")
    COMMENTED = "commented", gettext_lazy("Commented")
    CHOSE = "chose", gettext_lazy("Chose to watch")


class Watcher(models.Model):
    """A person told about everything that happens to one RFC."""

    rfc = models.ForeignKey("releases.Rfc", on_delete=models.CASCADE, related_name="watchers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=WatchReason.choices, default=WatchReason.CHOSE)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rfc", "user"], name="notify_one_watch_per_rfc")]

    def __str__(self) -> str:
        return f"{self.user} watches {self.rfc}"


class Mute(models.Model):
    """A person who hears nothing more about one RFC (urgent alerts excepted)."""

    rfc = models.ForeignKey("releases.Rfc", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rfc", "user"], name="notify_one_mute_per_rfc")]

    def __str__(self) -> str:
        return f"{self.user} muted {self.rfc}"


class Channel(models.TextChoices):
    MAIL = "mail", gettext_lazy("Mail")
    CHAT = "chat", gettext_lazy("Chat")
    NONE = "none", gettext_lazy("Nothing")


class Preference(models.Model):
    """How one person wants to hear of one kind of event; without a row, by mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.MAIL)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notify_one_preference_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.kind} by {self.channel}"


class Notice(models.Model):
    """One person told of one event on one channel (what was sent, for the person and for tests)."""

    kind = models.CharField(max_length=40)
    rfc = models.ForeignKey("releases.Rfc", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    audiences = models.JSONField(
        default=list, help_text=gettext_lazy("Why this person was told: author, watcher …")
    )
    mail_id = models.BigIntegerField(
        null=True, blank=True, help_text=gettext_lazy("The outbox row, for mail.")
    )
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="notify_notice_user_idx")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.user} ({self.channel})"


class WindowReminder(models.Model):
    """A reminder before a PROD deployment's window: at most one per deployment (two beats send one)."""

    deployment = models.OneToOneField("deployments.Deployment", on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"reminder for deployment {self.deployment_id}"


class GateState(models.Model):
    """The last known result of one gate of a scheduled RFC, to tell people when it starts failing."""

    rfc = models.ForeignKey("releases.Rfc", on_delete=models.CASCADE, related_name="+")
    gate = models.CharField(max_length=100)
    passed = models.BooleanField()
    checked_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rfc", "gate"], name="notify_one_state_per_gate")]

    def __str__(self) -> str:
        return f"{self.gate}: {'pass' if self.passed else 'fail'}"
