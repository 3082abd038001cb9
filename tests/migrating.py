"""Migration tests: go back to an earlier schema, get the models as they were, and always come back.

The models "as they were" are the state of the migrations actually applied after going back (not a
guess from leaf nodes: a newer app whose migrations depend on a reverted one is reverted with it).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate_to(targets: list[tuple[str, str]]):
    """Migrate to `targets`; return the app registry of the schema the database now has."""
    MigrationExecutor(connection).migrate(targets)
    loader = MigrationExecutor(connection).loader
    return loader.project_state(sorted(loader.applied_migrations)).apps


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def migrator(transactional_db):
    """`migrate_to`, with the latest schema restored after the test whatever its outcome (a failed
    migration test must not leave the next tests an old schema)."""
    yield migrate_to
    migrate_to_latest()
