"""Who follows an RFC (watchers) and who asked not to hear about it (mutes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core import clock


class WatchReason(models.TextChoices):
    AUTHOR = "author", "Author"
    APPROVER = "approver", "Approver"
    MENTIONED = "mentioned", "Mentioned in a comment"
    COMMENTED = "commented", "Commented"
    CHOSE = "chose", "Chose to watch"


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
