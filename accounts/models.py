"""Account records. Each concern keeps its models in its own section below."""

from __future__ import annotations

from django.conf import settings
from django.db import models


# --- Lockout: failed password attempts per account and per client address ----------------------
class LockoutScope(models.TextChoices):
    ACCOUNT = "account", "Account"
    ADDRESS = "address", "Client address"


class Lockout(models.Model):
    """Failed password attempts against one account (a username, whether it exists or not) or from one
    client address, in the database so every web process sees the same count. `locked_until` in the
    future refuses every password entry for that account or address, the right password too."""

    scope = models.CharField(max_length=10, choices=LockoutScope.choices)
    key = models.CharField(max_length=150, help_text="The username (case-folded) or the client address.")
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="lockout_scope_key_unique")]
        ordering = ["-last_failure_at"]
        verbose_name = "sign-in lockout"

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.key}"


# --- API tokens: named, expiring, revocable; only a digest of the secret is stored ----------------
class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="The first characters of the secret, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at", "expires_at"], name="apitoken_user_active")]
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, now) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"
