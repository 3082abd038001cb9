"""Accounts: who may sign in and how (directory sign-in, MFA, lockout, sessions, API tokens,
access reviews). Sits above environments (a role is granted per site) and below everything that
signs or serves a page."""

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = gettext_lazy("Accounts")

    def ready(self) -> None:
        from django.conf import settings

        from accounts import checks, language, mfa, schema, signals  # noqa: F401  (role check; language, MFA and token receivers; schema)

        signals.connect()

        if getattr(settings, "LDAP_SERVER_URI", ""):
            # Fail at start-up, not at the first login, when the optional extra is missing.
            try:
                from accounts import ldap_auth  # noqa: F401  (connects its ldap_error receiver)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    "LDAP_SERVER_URI is set but django-auth-ldap/python-ldap are not installed: "
                    "install the 'ldap' extra (pip install '.[ldap]', needs libldap2-dev and libsasl2-dev)"
                ) from exc
