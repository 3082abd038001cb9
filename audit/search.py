"""The trail's text search index on PostgreSQL: GIN trigram indexes (pg_trgm) on the expressions the
text filter searches (audit.filters.filter_text: `reason` or `object_repr` contains, any case; Django
writes `icontains` as `UPPER(col::text) LIKE UPPER(%s)`). Created by migration 0004, or later by
`manage.py audit_search_index` once a superuser has created the extension (docs/audit-search.md)."""

from __future__ import annotations

import logging
import warnings

logger = logging.getLogger("audit.search")

INDEXES = {
    "audit_reason_trgm_idx": "reason",
    "audit_object_repr_trgm_idx": "object_repr",
}


def has_trigram_indexes(connection) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = ANY(%s)", [list(INDEXES)])
        return cursor.fetchone()[0] == len(INDEXES)


def ensure_trigram_indexes(connection) -> bool:
    """Create pg_trgm (if it is not there yet) and the indexes, CONCURRENTLY (run outside a
    transaction: writers are not blocked). False, with a warning in the log, when the extension
    cannot be created: the search keeps working without the index (a full scan). Nothing on SQLite."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except Exception as exc:  # no privilege, or the contrib package is not installed
                message = (
                    f"audit: could not create the pg_trgm extension ({exc.__class__.__name__}: "
                    f"{str(exc).strip()}); the trail's text search works without an index (a full scan). "
                    "See docs/audit-search.md: a superuser runs CREATE EXTENSION pg_trgm in this "
                    "database, then `manage.py audit_search_index`."
                )
                logger.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                return False
        for name, column in INDEXES.items():
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON audit_auditevent "
                f"USING gin ((UPPER(({column})::text)) gin_trgm_ops)"
            )
    return True


def drop_trigram_indexes(connection) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
