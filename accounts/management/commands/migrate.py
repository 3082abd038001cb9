"""`manage.py migrate`, run as the database owner when DATABASE_OWNER_URL is set, then granting the
app role its privileges (accounts/dbroles.py).

Django's own migrate, wrapped rather than given a second database alias: with an alias, the
migrations' data steps and the post_migrate handlers (content types, permissions, role groups,
approval policies) would still write through "default", as the app role, before it has been granted
anything. Here the default connection itself logs in as the owner for the whole command, so
`make migrate`, the compose `migrate` service and the test runner need no extra flag.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS

from accounts import dbroles


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " With DATABASE_OWNER_URL set: as the owner, then grants the app role."

    def handle(self, *args, **options):
        if not settings.DATABASE_OWNER_URL or options["database"] != DEFAULT_DB_ALIAS:
            return super().handle(*args, **options)
        with dbroles.as_owner(DEFAULT_DB_ALIAS):
            super().handle(*args, **options)
            try:
                statements = dbroles.grant_app_privileges(DEFAULT_DB_ALIAS)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from exc
        if options["verbosity"] >= 1:
            self.stdout.write(f"Granted the app role {settings.DATABASE_APP_ROLE!r} its privileges.")
        if options["verbosity"] >= 2:
            self.stdout.write("\n".join(f"  {statement};" for statement in statements))
