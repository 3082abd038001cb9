"""Accounts: who may sign in and how (directory sign-in, MFA, lockout, sessions, API tokens,
access reviews). Sits above environments (a role is granted per site) and below everything that
signs or serves a page."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401  (registers the database role check)
