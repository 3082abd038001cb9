"""Account records. Each concern keeps its models in its own section below."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from core.roles import Role


# --- Lockout: failed password attempts per account and per client address ----------------------
class LockoutScope(models.TextChoices):
    ACCOUNT = "account", _("Account")
    ADDRESS = "address", _("Client address")


class Lockout(models.Model):
    """Failed password attempts against one account (a username, whether it exists or not) or from one
    client address, in the database so every web process sees the same count. `locked_until` in the
    future refuses every password entry for that account or address, the right password too."""

    scope = models.CharField(max_length=10, choices=LockoutScope.choices)
    key = models.CharField(max_length=150, help_text=_("The username (case-folded) or the client address."))
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="lockout_scope_key_unique")]
        ordering = ["-last_failure_at"]
        verbose_name = _("sign-in lockout")

    def __str__(self) -> str:
        with translation.override(None):  # the audit trail keeps it as the object's name: English
            return f"{self.get_scope_display()} {self.key}"


# --- API tokens: named, expiring, revocable; only a digest of the secret is stored ----------------
class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=8, help_text=_("The first characters of the secret, to recognise it.")
    )
    digest = models.CharField(max_length=64, unique=True, help_text=_("SHA-256 of the secret."))
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at", "expires_at"], name="apitoken_user_active")]
        ordering = ["-created_at"]
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, now) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


# --- Directory sign-in (OpenID Connect and LDAP) ------------------------------------------------
class DirectorySource(models.TextChoices):
    OIDC = "oidc", "OpenID Connect"
    LDAP = "ldap", "LDAP / Active Directory"


class DirectoryIdentity(models.Model):
    """A portal user who signs in through a directory. Keyed on the directory's own stable id
    (OIDC: issuer + `sub`; LDAP: the entry's UUID), so a renamed account keeps its user. A user with
    such a row has no usable local password."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_identities"
    )
    source = models.CharField(max_length=8, choices=DirectorySource.choices)
    issuer = models.CharField(max_length=255, blank=True, help_text=_("The OpenID issuer; empty for LDAP."))
    subject = models.CharField(max_length=255, help_text=_("The directory's stable id for the account."))
    username_at_source = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "issuer", "subject"], name="accounts_directory_identity_unique"
            )
        ]
        verbose_name_plural = _("directory identities")

    def __str__(self) -> str:
        return f"{self.get_source_display()}: {self.username_at_source or self.subject}"


class DirectoryGroupMapping(models.Model):
    """One directory group → one portal role, at one site or (no site) at every site. Shared by
    OpenID Connect (the groups claim) and LDAP (the user's groups, by name or DN)."""

    source = models.CharField(max_length=8, choices=DirectorySource.choices)
    group = models.CharField(
        max_length=255,
        help_text=_("The group as the directory names it (OIDC claim value, LDAP group name or DN)."),
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    site = models.ForeignKey(
        "environments.Site",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text=_("Empty: the role applies at every site."),
    )

    class Meta:
        ordering = ["source", "group", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "group", "role", "site"], name="accounts_group_mapping_unique_site"
            ),
            models.UniqueConstraint(
                fields=["source", "group", "role"],
                condition=models.Q(site__isnull=True),
                name="accounts_group_mapping_unique_global",
            ),
        ]

    def __str__(self) -> str:
        where = self.site.code if self.site_id else "every site"
        with translation.override(None):  # the audit trail keeps it as the object's name: English
            return f"{self.get_source_display()} group {self.group} → {Role(self.role).label} at {where}"


class DirectoryGrant(models.Model):
    """A role the directory sync granted (and so may take back). Roles granted by hand have no
    row here and are never touched by a sync."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_grants"
    )
    source = models.CharField(max_length=8, choices=DirectorySource.choices)
    role = models.CharField(max_length=32, choices=Role.choices)
    site = models.ForeignKey("environments.Site", on_delete=models.CASCADE, null=True, blank=True)
    granted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source", "role", "site"], name="accounts_grant_unique_site"
            ),
            models.UniqueConstraint(
                fields=["user", "source", "role"],
                condition=models.Q(site__isnull=True),
                name="accounts_grant_unique_global",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} @ {self.site_id or 'all'} ({self.source})"


# --- Profile: a person's own settings (the interface language) ----------------------------------
class Profile(models.Model):
    """One row per person who chose something. ``language`` blank = follow the browser; the browser's
    last preference is kept so that mails, which have no browser, reach the person in it too."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(max_length=10, blank=True)
    browser_language = models.CharField(max_length=10, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser'})"
