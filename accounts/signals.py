"""A changed password or a deactivation revokes the user's API tokens, whichever path saved it (the
password page, the admin, `set_password()` and `save()` in a shell); a sign-in starts the session's
clocks (accounts/middleware.py)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts import sessions, tokens
from core.context import current_context

_WATCHED = {"password", "is_active"}


def _acting_user():
    context = current_context()
    user = getattr(getattr(context, "request", None), "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def _before_user_save(sender, instance, raw=False, update_fields=None, **kwargs):
    instance._accounts_revoke = None
    if raw or instance.pk is None:
        return
    fields = set(update_fields) if update_fields is not None else None
    if fields is not None and not fields & _WATCHED:
        return  # e.g. last_login at each sign-in: no extra query
    stored = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    # Django re-hashes a password at sign-in when the hasher's parameters change; that upgrade saves
    # the password field alone with no new raw password, and is not a change of password.
    rehash = fields == {"password"} and getattr(instance, "_password", None) is None
    if stored["password"] != instance.password and not rehash:
        instance._accounts_revoke = "password changed"
    elif stored["is_active"] and not instance.is_active:
        instance._accounts_revoke = "account deactivated"


def _after_user_save(sender, instance, created=False, raw=False, **kwargs):
    reason = getattr(instance, "_accounts_revoke", None)
    instance._accounts_revoke = None
    if reason and not raw:
        tokens.revoke_all(instance, actor=_acting_user(), reason=reason)


def connect() -> None:
    User = get_user_model()
    pre_save.connect(_before_user_save, sender=User, dispatch_uid="accounts-user-before-save")
    post_save.connect(_after_user_save, sender=User, dispatch_uid="accounts-user-after-save")


@receiver(user_logged_in, dispatch_uid="accounts-session-start")
def _session_started(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        sessions.start(request.session)
