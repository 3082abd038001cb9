from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.search import ensure_trigram_indexes, has_trigram_indexes


class Command(BaseCommand):
    help = (
        "Create the trail's trigram text-search indexes on PostgreSQL (after a superuser has created "
        "the pg_trgm extension, when migration 0004 could not)."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("Not PostgreSQL: the text search needs no index here.")
            return
        if not ensure_trigram_indexes(connection) or not has_trigram_indexes(connection):
            raise CommandError("pg_trgm is not available to this role: see docs/audit-search.md")
        self.stdout.write(
            self.style.SUCCESS("Trigram indexes for the audit trail's text search are in place.")
        )
