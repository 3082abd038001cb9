"""Sign-in forms with the lockout (the login page's also tells a directory that cannot be reached
from a wrong password), and the form that makes an API token."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy, ngettext

from accounts import lockout
from core.clientip import client_ip


def locked_text(lock: lockout.Lock) -> str:
    """The lock's reason and what to do about it."""
    return gettext("%(reason)s. Try again after that, or ask an administrator to unlock it.") % {
        "reason": lock.message
    }


class LockoutMixin:
    """Refuse a locked account or address before the password is even checked; count failures."""

    lockout_entry = "sign-in"

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()
        address = client_ip(self.request) if self.request is not None else None
        try:
            lockout.check(username, address, entry=self.lockout_entry)
        except lockout.Locked as locked:
            raise ValidationError(locked_text(locked.lock), code="locked") from None
        try:
            cleaned = super().clean()
        except ValidationError as error:
            # A directory that cannot be reached is not a wrong password: it does not count.
            unreachable = getattr(error, "code", None) == "directory_unreachable"
            if (
                self.user_cache is None and not unreachable
            ):  # the credentials failed (not a rule about an existing user)
                lock = lockout.failed(username, address, entry=self.lockout_entry)
                if lock is not None:
                    raise ValidationError(locked_text(lock), code="locked") from None
            raise
        lockout.succeeded(username)
        return cleaned


UNREACHABLE_ATTR = "_directory_unreachable"  # set on the request by accounts.ldap_auth


class DirectoryAuthenticationForm(AuthenticationForm):
    """The local password and, when configured, the LDAP directory (both through Django's
    authenticate); says so when the directory could not be reached."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "directory_unreachable": gettext_lazy(
            "The sign-in directory could not be reached, so your password could not be checked. "
            "Try again in a few minutes; if it persists, tell IT."
        ),
    }

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            if self.request is not None and getattr(self.request, UNREACHABLE_ATTR, False):
                raise ValidationError(
                    self.error_messages["directory_unreachable"], code="directory_unreachable"
                ) from None
            raise


class LoginForm(LockoutMixin, DirectoryAuthenticationForm):
    """The login page's form: lockout first, then the password (local or directory)."""


LockoutAuthenticationForm = LoginForm


class AdminLockoutAuthenticationForm(LockoutMixin, AdminAuthenticationForm):
    lockout_entry = "admin sign-in"


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label=gettext_lazy("Name"),
        help_text=gettext_lazy("What the token is for, e.g. the pipeline that uses it."),
    )
    days = forms.IntegerField(
        label=gettext_lazy("Valid for (days)"),
        min_value=1,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"].initial = settings.API_TOKEN_DAYS
        self.fields["days"].max_value = settings.API_TOKEN_MAX_DAYS
        self.fields["days"].validators.append(_at_most_max_days)
        self.fields["days"].widget.attrs.update({"min": 1, "max": settings.API_TOKEN_MAX_DAYS})
        self.fields["days"].help_text = gettext(
            "The token stops working after this many days. At most %(days)s."
        ) % {"days": settings.API_TOKEN_MAX_DAYS}


def _at_most_max_days(value: int) -> None:
    if value > settings.API_TOKEN_MAX_DAYS:
        raise ValidationError(
            ngettext("At most %(days)d day.", "At most %(days)d days.", settings.API_TOKEN_MAX_DAYS)
            % {"days": settings.API_TOKEN_MAX_DAYS}
        )
