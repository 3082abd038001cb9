"""The trail's text search through GIN trigram indexes on PostgreSQL (pg_trgm): audit/search.py.

When the migrating role cannot create the extension (no privilege, contrib package missing) the
migration says so in a warning and the log and succeeds without the indexes: the search still works,
by a full scan (docs/audit-search.md). Built CONCURRENTLY, hence not atomic. Nothing on SQLite.
"""

from django.db import migrations


def forward(apps, schema_editor):
    from audit.search import ensure_trigram_indexes

    ensure_trigram_indexes(schema_editor.connection)


def backward(apps, schema_editor):
    from audit.search import drop_trigram_indexes

    drop_trigram_indexes(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY; a refused CREATE EXTENSION aborts no transaction
    dependencies = [("audit", "0003_trail_indexes")]
    operations = [migrations.RunPython(forward, backward)]
