"""API tokens: named, expiring, revocable, and stored as a SHA-256 digest only.

The secret is shown once, when the token is made; `Authorization: Token <secret>` finds the row by
its digest. A token is refused once expired or revoked; all of a user's tokens are revoked when
their password changes or they are deactivated (accounts/signals.py).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count

from accounts.models import ApiToken
from audit.services import record
from core import clock

# A token's last use is written at most this often, not on every request.
LAST_USED_EVERY = timedelta(minutes=1)
DEFAULT_NAME = "API token"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(user, *, name: str = "", days: int | None = None, actor=None) -> tuple[ApiToken, str]:
    """A new token for `user`: the row and the secret (which is not stored)."""
    days = settings.API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise ValidationError({"days": f"A token lasts from 1 to {settings.API_TOKEN_MAX_DAYS} days."})
    name = (name or "").strip()[:100] or DEFAULT_NAME
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:8],
        digest=digest(secret),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    record(
        "accounts.token.issued",
        token,
        actor=actor or user,
        after={
            "user": user.get_username(),
            "name": name,
            "prefix": token.prefix,
            "expires_at": token.expires_at,
        },
    )
    return token, secret


class TokenRefused(Exception):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def authenticate(secret: str) -> ApiToken:
    """The live token for `secret`, with its user; `TokenRefused` says why not."""
    token = ApiToken.objects.select_related("user").filter(digest=digest(secret)).first() if secret else None
    if token is None:
        raise TokenRefused("Invalid token.", "authentication_failed")
    now = clock.now()
    if token.revoked_at is not None:
        raise TokenRefused("This token has been revoked; ask for a new one.", "token_revoked")
    if token.expires_at <= now:
        raise TokenRefused("This token has expired; ask for a new one.", "token_expired")
    if not token.user.is_active:
        raise TokenRefused("User inactive or deleted.", "authentication_failed")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token: ApiToken, *, actor, reason: str) -> bool:
    """Revoke one token (False when it was revoked already)."""
    now = clock.now()
    if not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason[:100]
    ):
        return False
    token.revoked_at, token.revoked_reason = now, reason[:100]
    record(
        "accounts.token.revoked",
        token,
        actor=actor,
        after={"user": token.user.get_username(), "name": token.name, "prefix": token.prefix},
        reason=reason,
    )
    return True


def revoke_all(user, *, actor, reason: str) -> int:
    """Revoke every live (unrevoked, unexpired) token of `user`; the count revoked."""
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=clock.now())
    count = 0
    for token in live.select_related("user"):
        count += revoke(token, actor=actor, reason=reason)
    return count


def active_count_by_user(user_ids) -> dict[int, int]:
    """For an access review: live tokens per user id (users without any are absent). One query."""
    rows = (
        ApiToken.objects.filter(
            user_id__in=list(user_ids), revoked_at__isnull=True, expires_at__gt=clock.now()
        )
        .values("user_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {row["user_id"]: row["count"] for row in rows}
