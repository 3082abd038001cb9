"""The trail's text search index (audit/search.py, migration 0004): on PostgreSQL the pg_trgm GIN
indexes exist; where the extension cannot be created the migration warns and the search still works."""

from __future__ import annotations

import logging

import pytest
from django.db import connection

from audit import search, trail
from audit.services import record


class _RefusingCursor:
    def __init__(self):
        self.statements = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        self.statements.append(sql)
        if sql.startswith("CREATE EXTENSION"):
            raise PermissionError('permission denied to create extension "pg_trgm"')

    def fetchone(self):
        return None  # the extension is not there


class _RefusingConnection:
    vendor = "postgresql"

    def __init__(self):
        self.cursor_ = _RefusingCursor()

    def cursor(self):
        return self.cursor_


def test_no_privilege_for_the_extension_is_said_not_fatal(caplog):
    refusing = _RefusingConnection()
    with (
        caplog.at_level(logging.WARNING, logger="audit.search"),
        pytest.warns(RuntimeWarning, match="pg_trgm"),
    ):
        assert search.ensure_trigram_indexes(refusing) is False
    assert "permission denied" in caplog.text and "audit_search_index" in caplog.text
    assert not any(sql.startswith("CREATE INDEX") for sql in refusing.cursor_.statements)


def test_nothing_to_do_on_sqlite():
    class SQLite:
        vendor = "sqlite"

    assert search.ensure_trigram_indexes(SQLite()) is False
    assert search.has_trigram_indexes(SQLite()) is False


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_migration_built_the_trigram_indexes():
    assert search.has_trigram_indexes(connection)


@pytest.mark.django_db
def test_text_search_finds_reason_and_object_name_in_any_case():
    record(
        "tests.search", actor_name="alice", object_type="x", object_id="1", reason="Calibration DRIFT seen"
    )
    record("tests.search", actor_name="alice", object_type="x", object_id="2", reason="nothing")
    rows, _, _ = trail.page(trail.Filters(text="calibration drift"))
    assert [event.object_id for event in rows] == ["1"]
