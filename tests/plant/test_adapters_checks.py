"""The adapters the engine needs (X1, X2, X3, X7, R3, E5): a backup verified right after it is taken,
a business-transaction smoke check in the plant's database, a command's revert, a check's label."""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection

from demo_plant.artifacts import build as build_artifacts
from deployments.models import DeploymentState, StepState
from plant import adapters
from plant.plantdb import PostgresDatabase, SqliteDatabase
from tests.demo_plant_server import site_plant

REPO = Path(__file__).resolve().parents[2]


def context(tmp_path: Path, *, equipment_writes: bool = False, tier: str = "DEV") -> adapters.Context:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return adapters.Context(
        deployment_id=7,
        rfc_number="RFC-2026-0007",
        site="PLA",
        tier=tier,
        version="2.4.1",
        artifact_path="",
        artifact_sha256="",
        migration_sql="",
        undo_sql="",
        equipment_writes=equipment_writes,
        work_dir=work,
    )


@pytest.fixture
def mes(tmp_path) -> Path:
    path = tmp_path / "mes.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE cycles (id INTEGER PRIMARY KEY, line TEXT NOT NULL, good_parts INTEGER)")
        db.execute("INSERT INTO cycles (line, good_parts) VALUES ('Line 2', 100)")
    return path


def garbage_copy(monkeypatch, content: bytes = b"this is not a database " * 100):
    """Every backup copy comes out as `content` (a disk that lies, a copy cut short)."""

    def copy_into(self, other):
        Path(other.target).write_bytes(content)
        return len(content)

    monkeypatch.setattr(SqliteDatabase, "copy_into", copy_into)


# --- Backup verification (X1, C3) ----------------------------------------------------------------
def test_a_sqlite_backup_is_verified_right_after_it_is_taken(tmp_path, mes):
    """X1, C3: the copy passes PRAGMA integrity_check and is not empty; the journal data says so."""
    result = adapters.build({"adapter": "sqlite", "database": str(mes)}).run(context(tmp_path))
    assert result.ok, result.output
    assert result.data["verified"] is True and result.data["method"] == "PRAGMA integrity_check"
    assert result.data["bytes"] > 0 and "verified by PRAGMA integrity_check" in result.output


@pytest.mark.parametrize("content", [b"this is not a database " * 100, b""], ids=["garbage", "empty"])
def test_a_sqlite_backup_that_cannot_be_read_back_fails_the_step(tmp_path, mes, monkeypatch, content):
    """X1, C3: a copy that is garbage or empty fails the backup step with the reason."""
    garbage_copy(monkeypatch, content)
    result = adapters.build({"adapter": "sqlite", "database": str(mes)}).run(context(tmp_path))
    assert not result.ok and "NOT usable" in result.output
    assert result.data["verified"] is False and result.data["method"] == "PRAGMA integrity_check"


@pytest.fixture
def pg_database():
    settings_dict = connection.settings_dict
    base = (
        f"postgresql://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}"
    )
    admin = PostgresDatabase(f"{base}/postgres")
    name = f"cc_plant_{uuid.uuid4().hex[:8]}_backup"
    with admin._connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database = PostgresDatabase(f"{base}/{name}")
    database.run_script("CREATE TABLE cycles (id int PRIMARY KEY, line text, good_parts int);")
    database.run_script("INSERT INTO cycles VALUES (1, 'Line 2', 100);")
    yield database
    with admin._connect(autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_a_postgres_dump_is_verified_and_a_truncated_one_fails(tmp_path, pg_database, monkeypatch):
    """X1, C3: pg_restore --list reads the dump back; a dump cut short fails the backup step."""
    spec = {"adapter": "postgres", "dsn": pg_database.target}
    result = adapters.build(spec).run(context(tmp_path))
    assert result.ok, result.output
    assert result.data["verified"] is True and result.data["method"] == "pg_restore --list"
    original = PostgresDatabase.dump_to

    def truncated(self, path):
        size = original(self, path)
        path.write_bytes(path.read_bytes()[: size // 3])
        return size // 3

    monkeypatch.setattr(PostgresDatabase, "dump_to", truncated)
    result = adapters.build(spec).run(context(tmp_path))
    assert not result.ok and "NOT usable" in result.output and result.data["verified"] is False


def test_a_command_backup_is_verified_by_its_verify_command(tmp_path):
    """X1: a command backup proves itself with its `verify` command; a failing verify fails the step."""
    spec = {"adapter": "command", "command": ["true"], "verify": ["true"], "revert_command": ["true"]}
    result = adapters.build(spec).run(context(tmp_path))
    assert result.ok and result.data["verified"] is True and result.data["method"] == "verify command"
    result = adapters.build({**spec, "verify": ["false"]}).run(context(tmp_path))
    assert not result.ok and result.data["verified"] is False and "backup is not usable" in result.output


def test_a_corrupt_backup_stops_the_deployment_before_the_apply(
    cast, site_a, tmp_path, settings, monkeypatch
):
    """X1, C3: the engine stops on the failed verification: no apply, no equipment, nothing to restore,
    the plant as it was."""
    from deployments import engine
    from tests.deployments.test_engine import app_version, artifact_release, deploy, steps, tables

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    artifacts = build_artifacts(tmp_path / "artifacts")
    with site_plant(tmp_path / "plant", site_a) as root:
        release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
        garbage_copy(monkeypatch)
        deployment = deploy(cast, site_a, "DEV", release)
        assert deployment.state == DeploymentState.FAILED, deployment.outcome
        assert "Backup failed; nothing applied." in deployment.outcome
        assert "Nothing was applied" in deployment.outcome
        journal = steps(deployment)
        assert journal["forward:backup"] == StepState.FAILED
        assert "forward:apply" not in journal and "forward:equipment" not in journal
        assert not deployment.steps.filter(phase="rollback").exists()
        backup = deployment.steps.get(name="backup")
        assert backup.result["verified"] is False and "NOT usable" in backup.output
        assert app_version(root, site_a, "DEV") == "2.3.1" and "label_layouts" not in tables(
            root, site_a, "DEV"
        )
        assert engine.run(deployment.pk, owner="test-worker") == DeploymentState.FAILED


# --- A business transaction as the smoke check (X2, X7) ------------------------------------------
def sql_check(database: str, query: str, expect: str, **extra) -> dict:
    return {"adapter": "sql_check", "database": database, "query": query, "expect": expect, **extra}


def count(mes: Path) -> int:
    with closing(sqlite3.connect(mes)) as db:
        return db.execute("SELECT count(*) FROM cycles").fetchone()[0]


def test_a_sql_check_completes_a_transaction_reports_it_and_keeps_nothing(tmp_path, mes):
    """X2, X7: one cycle completed in the plant's database: the row it gave, its latency, rolled back."""
    query = "INSERT INTO cycles (line, good_parts) VALUES ('Line 2', 100) RETURNING good_parts, line"
    result = adapters.build(sql_check(f"sqlite:///{mes}", query, "100")).run(context(tmp_path))
    assert result.ok, result.output
    assert result.data["row"] == [100, "Line 2"] and result.data["latency_ms"] >= 0
    assert "rolled back" in result.output and count(mes) == 1


@pytest.mark.parametrize(
    ("query", "expect", "says"),
    [
        ("SELECT good_parts FROM cycles", "99", "gave '100' (row [100]), expected '99'"),
        ("SELECT good_parts FROM cycles WHERE line = 'Line 9'", "100", "gave no row, expected '100'"),
        ("SELECT good_parts FROM no_such_table", "100", "no such table: no_such_table"),
    ],
)
def test_a_sql_check_fails_with_what_it_got(tmp_path, mes, query, expect, says):
    """X2, X3: a wrong answer, no row or an error fails the check, saying what came back."""
    result = adapters.build(sql_check(f"sqlite:///{mes}", query, expect)).run(context(tmp_path))
    assert not result.ok and says in result.output and "latency_ms" in result.data


def test_a_sql_check_is_timed_out(tmp_path, mes):
    """X2: a check that does not answer in its timeout fails instead of holding the deployment."""
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    spec = sql_check(f"sqlite:///{mes}", endless, "1", timeout=0.3)
    result = adapters.build(spec).run(context(tmp_path))
    assert not result.ok and "timed out after 0.3 s" in result.output


@pytest.mark.postgres
def test_a_sql_check_on_postgres_is_rolled_back(tmp_path, pg_database):
    """X2, X7: the same check against PostgreSQL: answered, timed, nothing kept."""
    query = "INSERT INTO cycles VALUES (2, 'Line 2', 100) RETURNING good_parts"
    result = adapters.build(sql_check(pg_database.target, query, "100")).run(context(tmp_path))
    assert result.ok, result.output
    assert result.data["row"] == [100]
    again = adapters.build(sql_check(pg_database.target, "SELECT count(*) FROM cycles", "1"))
    assert again.run(context(tmp_path)).ok


# --- A command's revert (R3, E5) -------------------------------------------------------------------
def recorder(tmp_path: Path, word: str) -> list[str]:
    script = "import os, sys; open(sys.argv[1], 'a').write(sys.argv[2] + ' ' + os.environ['PCC_SIMULATION'] + '\\n')"
    return [sys.executable, "-c", script, str(tmp_path / "calls.log"), word]


def test_a_command_reverts_with_its_revert_command(tmp_path):
    """R3: build(restore=True) of a command runs its revert_command; without one, the error names it."""
    spec = {
        "adapter": "command",
        "command": recorder(tmp_path, "push"),
        "revert_command": recorder(tmp_path, "undo"),
    }
    assert adapters.build(spec).run(context(tmp_path)).ok
    assert adapters.build(spec, restore=True).run(context(tmp_path)).ok
    assert (tmp_path / "calls.log").read_text().split("\n")[:2] == ["push 1", "undo 1"]
    with pytest.raises(adapters.AdapterError, match="needs 'revert_command'"):
        adapters.build({"adapter": "command", "command": ["true"]}, restore=True)


def test_an_equipment_revert_is_simulated_outside_prod_and_real_in_prod(tmp_path):
    """E5, R3: undoing an equipment push obeys the environment like the push: simulated in DEV and UAT
    (PCC_SIMULATION=1, nothing written), real in PROD."""
    env_dir = tmp_path / "line"
    env_dir.mkdir()
    push = [
        sys.executable,
        "-m",
        "demo_plant.equipment",
        "--env-dir",
        str(env_dir),
        "--recipe",
        "label-layout",
    ]
    spec = {
        "adapter": "command",
        "command": push,
        "revert_command": [*push, "--revert"],
        "writes_equipment": True,
        "cwd": str(REPO),
    }
    result = adapters.build(spec, restore=True).run(context(tmp_path, equipment_writes=False))
    assert result.ok and result.simulated and "SIMULATED: would push the recipe before" in result.output
    assert not (env_dir / "equipment.log").exists()
    result = adapters.build(spec, restore=True).run(context(tmp_path, equipment_writes=True, tier="PROD"))
    assert result.ok and not result.simulated
    assert "pushed the recipe before label-layout" in (env_dir / "equipment.log").read_text()


# --- A check's label ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        {"adapter": "command", "command": ["true"], "name": "print one label"},
        {
            "adapter": "sql_check",
            "database": "sqlite:///MES",
            "query": "SELECT 1",
            "expect": "1",
            "name": "print one label",
        },
    ],
)
def test_any_adapter_carries_its_name_into_the_step_data(tmp_path, mes, spec):
    """X7, C2: a `name` on an adapter is the check's label in the journal."""
    spec = json.loads(json.dumps(spec).replace("MES", str(mes)))
    adapter = adapters.build(spec)
    result = adapter.run(context(tmp_path))
    assert result.ok and result.data["name"] == "print one label"
    assert adapter.name == spec["adapter"]
