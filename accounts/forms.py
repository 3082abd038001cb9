"""The login form: the local password and, when configured, the LDAP directory (both through
Django's authenticate); it tells a directory that cannot be reached from a wrong password."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

UNREACHABLE_ATTR = "_directory_unreachable"  # set on the request by accounts.ldap_auth


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "directory_unreachable": (
            "The sign-in directory could not be reached, so your password could not be checked. "
            "Try again in a few minutes; if it persists, tell IT."
        ),
    }

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if self.request is not None and getattr(self.request, UNREACHABLE_ATTR, False):
                raise forms.ValidationError(
                    self.error_messages["directory_unreachable"], code="directory_unreachable"
                ) from None
            raise
