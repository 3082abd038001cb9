"""Logins, logouts and failed logins go to the audit trail (C1).

Django announces these through its auth signals; that is the only place they are known.
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.services import record


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender, request, user, **kwargs):
    record("accounts.login.succeeded", actor=user, object_type="auth.user", object_id=str(user.pk))


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record("accounts.logged_out", actor=user, object_type="auth.user", object_id=str(user.pk))


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the username is kept; the password Django already masks never reaches the trail.
    username = str(credentials.get("username", ""))[:150]
    record(
        "accounts.login.failed", actor_name=username, object_type="auth.user", after={"username": username}
    )
