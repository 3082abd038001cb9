"""Grant the app's database role its privileges (idempotent); `migrate` runs this itself after
migrating when DATABASE_OWNER_URL is set."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from accounts import dbroles


class Command(BaseCommand):
    help = "As DATABASE_OWNER_URL's role, grant the app role (DATABASE_APP_ROLE) its table privileges."

    def add_arguments(self, parser):
        parser.add_argument(
            "--role", help="The app role (default: DATABASE_APP_ROLE, or DATABASE_URL's user)."
        )

    def handle(self, *args, **options):
        if not settings.DATABASE_OWNER_URL:
            raise CommandError(
                "Set DATABASE_OWNER_URL to the owner role's URL (README.md, The database roles)."
            )
        try:
            with dbroles.as_owner(DEFAULT_DB_ALIAS):
                statements = dbroles.grant_app_privileges(DEFAULT_DB_ALIAS, options["role"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        for statement in statements:
            self.stdout.write(f"{statement};")
