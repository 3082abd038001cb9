"""Evidence computed, not claimed: UAT refresh with masking, idempotent SQL, rehearsed rollback,
freshness, drift and the automatic rejection when DEV passed and UAT failed — on real SQLite files and,
in CI, on real PostgreSQL databases (pg_dump/pg_restore)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from core import clock
from deployments import checks
from deployments.models import CheckKind
from environments.models import Environment, MaskingRule, ProductVersion, RefreshRun
from plant import evidence
from plant.plantdb import PostgresDatabase, SqliteDatabase
from releases import gates, services
from tests import factories
from tests.conftest import api_client_for, client_for
from workflow import services as wf

pytestmark = pytest.mark.django_db

OPERATORS = [
    (1, "Anna Schmidt", "B-1001", "anna.schmidt@plant.example", "night shift lead"),
    (2, "Jamal Idris", "B-1002", "jamal.idris@plant.example", "forklift licence"),
    (3, "Mei Chen", "B-1003", None, "trainee"),
]
SCHEMA = (
    "CREATE TABLE operators (id INTEGER PRIMARY KEY, name TEXT, badge TEXT, email TEXT, note TEXT);"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, qty INTEGER);"
)


def _seed_sql() -> str:
    rows = ", ".join(
        "({}, '{}', '{}', {}, '{}')".format(i, n, b, f"'{e}'" if e else "NULL", t)
        for i, n, b, e, t in OPERATORS
    )
    return SCHEMA + f"INSERT INTO operators VALUES {rows}; INSERT INTO orders VALUES (1, 40), (2, 60);"


VENDORS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=VENDORS)
def plant(request, site_a, tmp_path):
    """PROD and UAT databases of site_a (DEV too), wired into the environments' pipelines."""
    made = []
    if request.param == "sqlite":
        dbs = {tier: SqliteDatabase(str(tmp_path / f"{tier}.sqlite3")) for tier in ("DEV", "UAT", "PROD")}
        for db in dbs.values():
            sqlite3.connect(db.target).close()
    else:
        settings_dict = connection.settings_dict
        base = f"postgresql://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}"
        admin = PostgresDatabase(f"{base}/postgres")
        dbs = {}
        for tier in ("DEV", "UAT", "PROD"):
            name = f"cc_plant_{uuid.uuid4().hex[:8]}_{tier.lower()}"
            with admin._connect(autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            made.append(name)
            dbs[tier] = PostgresDatabase(f"{base}/{name}")
    for tier, db in dbs.items():
        db.run_script(_seed_sql() if tier != "DEV" else SCHEMA)
        env = Environment.objects.get(site=site_a, tier=tier)
        env.pipeline = {
            "backup": {"adapter": "sqlite", "database": db.target}
            if db.kind == "sqlite"
            else {"adapter": "postgres", "dsn": db.target}
        }
        env.save(update_fields=["pipeline"])
    yield dbs
    for name in made:
        with admin._connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def env(site, tier) -> Environment:
    return Environment.objects.get(site=site, tier=tier)


def values(db) -> set[str]:
    """Every text value in the operators table."""
    if db.kind == "sqlite":
        with sqlite3.connect(db.target) as conn:
            rows = conn.execute("SELECT name, badge, email, note FROM operators").fetchall()
    else:
        with db._connect() as conn:
            rows = conn.execute("SELECT name, badge, email, note FROM operators").fetchall()
    return {str(v) for row in rows for v in row if v is not None}


# --- UAT refresh with masking (E3, E6, C4) ----------------------------------------------------------------
@pytest.mark.req("E3", "E6", "C4")
def test_refresh_masks_every_rule_before_uat_sees_the_data(cast, site_a, plant):
    MaskingRule.objects.create(table="operators", column="name", method="fake_name")
    MaskingRule.objects.create(table="operators", column="badge", method="hash")
    MaskingRule.objects.create(table="operators", column="email", method="null")
    MaskingRule.objects.create(site=site_a, table="operators", column="note", method="fixed", value="masked")
    run = evidence.request_refresh(cast["releasemgr"], env(site_a, "UAT"))
    assert evidence.run_refresh(run.pk) == "passed"
    run.refresh_from_db()
    uat = values(plant["UAT"])
    originals = {v for _, n, b, e, t in OPERATORS for v in (n, b, e, t) if v}
    assert not uat & originals  # no original value of a masked column survives in UAT
    assert any(v.startswith("Person ") for v in uat) and "masked" in uat
    assert (
        plant["UAT"].checksum().tables["orders"] == plant["PROD"].checksum().tables["orders"]
    )  # unmasked: copied
    assert run.masked["operators.email"] == {"method": "null", "rows": 3}
    assert run.bytes > 0 and run.duration_seconds is not None
    assert env(site_a, "UAT").data_refreshed_at == run.finished_at
    event = AuditEvent.objects.get(action="environments.refresh.passed")
    assert event.after["masked"]["operators.name"]["rows"] == 3


@pytest.mark.req("E3", "E6", "C4")
def test_a_copy_upwards_is_refused(cast, site_a, plant):
    with pytest.raises(ValidationError, match="only flows downwards"):
        evidence.request_refresh(cast["admin"], env(site_a, "PROD"), source=env(site_a, "UAT"))
    with pytest.raises(ValidationError, match="only flows downwards"):
        evidence.request_refresh(cast["admin"], env(site_a, "UAT"), source=env(site_a, "DEV"))
    assert not RefreshRun.objects.exists()


@pytest.mark.req("E3", "E6", "C4")
def test_a_failed_masking_leaves_uat_untouched(cast, site_a, plant):
    MaskingRule.objects.create(table="operators", column="no_such_column", method="null")
    before = plant["UAT"].checksum()
    run = evidence.request_refresh(cast["releasemgr"], env(site_a, "UAT"))
    assert evidence.run_refresh(run.pk) == "failed"
    run.refresh_from_db()
    assert "masking failed" in run.error and plant["UAT"].checksum() == before
    assert env(site_a, "UAT").data_refreshed_at is None


def test_refresh_runs_once_whoever_asks(cast, site_a, plant):
    run = evidence.request_refresh(cast["releasemgr"], env(site_a, "UAT"))
    assert evidence.run_refresh(run.pk) == "passed"
    assert evidence.run_refresh(run.pk) == "not queued"  # a duplicate delivery or the sweep


def test_freshness_gate_at_29_and_31_days(cast, site_a, plant):
    rfc = factories.rfc(cast["dev"], site_a)
    evidence.run_refresh(evidence.request_refresh(cast["releasemgr"], env(site_a, "UAT")).pk)
    refreshed = env(site_a, "UAT").data_refreshed_at

    def fresh():
        return next(g for g in gates.evaluate(rfc, "schedule") if g.name == "UAT data fresh")

    with time_machine.travel(refreshed + timedelta(days=29), tick=False):
        assert fresh().passed and "refreshed 29 days ago" in fresh().reason
    with time_machine.travel(refreshed + timedelta(days=31), tick=False):
        assert not fresh().passed and "31 days old" in fresh().reason


def test_monthly_refresh_is_due_by_the_calendar(cast, site_a, plant):
    uat = env(site_a, "UAT")
    uat.refresh_every_days = 30
    uat.save(update_fields=["refresh_every_days"])
    [run_id] = evidence.refresh_due()
    evidence.run_refresh(run_id)
    assert evidence.refresh_due() == []
    with time_machine.travel(clock.now() + timedelta(days=31), tick=False):
        assert len(evidence.refresh_due()) == 1


# --- Idempotent SQL (R8) ----------------------------------------------------------------------------------
def release_with(cast, version, sql, undo=""):
    return services.create_release(
        cast["dev"],
        product="MES",
        version=version,
        migration_sql=sql,
        undo_sql=undo,
        artifact=SimpleUploadedFile(f"mes-{version}.json", version.encode()),
    )


IDEMPOTENCY = [
    (
        "unguarded INSERT",
        "INSERT INTO orders (id, qty) SELECT max(id) + 1, 10 FROM orders;",
        False,
        "orders: 3 → 4 rows",
    ),
    (
        "CREATE without IF NOT EXISTS",
        "CREATE TABLE layouts (id INTEGER PRIMARY KEY);",
        False,
        "second run fails",
    ),
    (
        "guarded",
        "CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO layouts (id, name) VALUES (1, 'v2') ON CONFLICT (id) DO NOTHING;",
        True,
        "Idempotent",
    ),
]


@pytest.mark.parametrize(("what", "sql", "passes", "says"), IDEMPOTENCY, ids=[row[0] for row in IDEMPOTENCY])
def test_idempotency_check(cast, site_a, plant, what, sql, passes, says):
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", sql))
    uat_before = plant["UAT"].checksum()
    run = checks.request_check(cast["dev"], rfc, CheckKind.IDEMPOTENCY, site_a)
    assert checks.run_check(run.pk) == ("passed" if passes else "failed")
    run.refresh_from_db()
    assert says in run.summary
    assert plant["UAT"].checksum() == uat_before  # the check ran on a scratch copy, never on UAT
    gate = next(g for g in gates.evaluate(rfc, "schedule") if g.name == "SQL idempotent")
    assert gate.passed is passes and says in gate.reason


def test_a_new_artifact_needs_a_new_run(cast, site_a, plant):
    sql = "CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY);"
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", sql))
    checks.run_check(checks.request_check(cast["dev"], rfc, CheckKind.IDEMPOTENCY, site_a).pk)
    wf.update_rfc(cast["dev"], rfc, release=release_with(cast, "1.0.2", sql))
    rfc.refresh_from_db()
    gate = next(g for g in gates.evaluate(rfc, "schedule") if g.name == "SQL idempotent")
    assert not gate.passed and "has no run for artifact" in gate.reason


# --- Rollback rehearsal (R7, C3) --------------------------------------------------------------------------
def test_rehearsal_passes_with_an_exact_undo_and_records_the_rto(cast, site_a, plant):
    release = release_with(
        cast,
        "1.0.1",
        "CREATE TABLE IF NOT EXISTS layouts (id INTEGER);UPDATE orders SET qty = qty + 1;",
        "DROP TABLE IF EXISTS layouts; UPDATE orders SET qty = qty - 1;",
    )
    rfc = factories.rfc(cast["dev"], site_a, release=release)
    run = checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert checks.run_check(run.pk) == "passed"
    run.refresh_from_db()
    assert (
        run.result["how"] == "undo script"
        and run.result["rto_seconds"] >= 0
        and run.result["differences"] == []
    )
    assert next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Rollback rehearsed").passed


def test_rehearsal_whose_undo_leaves_a_difference_fails(cast, site_a, plant):
    release = release_with(
        cast,
        "1.0.1",
        "CREATE TABLE IF NOT EXISTS layouts (id INTEGER);INSERT INTO orders (id, qty) VALUES (99, 5);",
        "DROP TABLE IF EXISTS layouts;",
    )  # forgets the inserted order
    rfc = factories.rfc(cast["dev"], site_a, release=release)
    run = checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert "orders: 2 → 3 rows" in run.summary
    gate = next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Rollback rehearsed")
    assert not gate.passed and "orders: 2 → 3 rows" in gate.reason


def test_rehearsal_without_sql_restores_the_backup_into_a_scratch_copy(cast, site_a, plant):
    """R7, C3: no SQL in the release is no excuse: the rollback is the restore of the backup, rehearsed on
    scratch copies of UAT (SQLite's backup API, or pg_dump/pg_restore), its RTO recorded; the gate fails
    until that ran for this artifact, and UAT itself is never touched."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", ""))
    rehearsed = next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Rollback rehearsed")
    assert not rehearsed.passed and "has no run for artifact" in rehearsed.reason
    uat_before = plant["UAT"].checksum()
    run = checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert checks.run_check(run.pk) == "passed"
    run.refresh_from_db()
    assert run.result["how"] == "restore of the backup"  # this plant's pipeline has no directory snapshot
    assert run.result["rto_seconds"] >= 0 and run.result["differences"] == []
    assert run.result["before"]["tables"]["operators"]["rows"] == 3
    assert plant["UAT"].checksum() == uat_before
    assert next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Rollback rehearsed").passed


# --- Drift (E8) -----------------------------------------------------------------------------------------------
def test_drift_is_shown_after_a_deliberate_change_to_prod(cast, site_a, plant):
    uat, prod = env(site_a, "UAT"), env(site_a, "PROD")
    evidence.record_fingerprint(uat)
    evidence.record_fingerprint(prod)
    assert evidence.drift(env(site_a, "UAT"), env(site_a, "PROD")) == []
    plant["PROD"].run_script("CREATE TABLE hotfix_audit (id INTEGER);")
    ProductVersion.objects.filter(environment=prod, product="MES").update(version="1.0.9")
    evidence.record_fingerprint(env(site_a, "PROD"))
    differences = evidence.drift(env(site_a, "UAT"), env(site_a, "PROD"))
    assert "MES: UAT 1.0.0, PROD 1.0.9" in differences
    assert "tables only in PROD: hotfix_audit" in differences
    page = client_for(cast["releasemgr"]).get(reverse("environments:detail", args=[site_a.code, "UAT"]))
    assert "tables only in PROD: hotfix_audit" in page.content.decode()
    rfc = factories.rfc(cast["dev"], site_a, version="1.1.0")
    assert (
        "tables only in PROD: hotfix_audit"
        in client_for(cast["dev"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    )


# --- Pages and API ------------------------------------------------------------------------------------------
def test_pages_and_api_queue_runs(cast, site_a, plant):
    client = client_for(cast["releasemgr"])
    client.post(reverse("environments:refresh", args=[site_a.code, "UAT"]))
    run = RefreshRun.objects.get()
    assert run.state == "queued" and run.requested_by == cast["releasemgr"]
    assert (
        client_for(cast["dev"]).post(reverse("environments:refresh", args=[site_a.code, "UAT"])).status_code
        == 403
    )
    assert RefreshRun.objects.count() == 1  # a developer may not refresh
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", "SELECT 1;"))
    dev = client_for(cast["dev"])
    dev.post(reverse("releases:request_check", args=[rfc.uuid]), {"site": site_a.code, "kind": "idempotency"})
    api = api_client_for(cast["dev"])
    listed = api.get(f"/api/v1/rfcs/{rfc.uuid}/checks/").json()
    assert [(c["kind"], c["state"]) for c in listed] == [("idempotency", "queued")]
    posted = api.post(
        f"/api/v1/rfcs/{rfc.uuid}/checks/", {"kind": "rehearsal", "site": site_a.code}, format="json"
    )
    assert posted.status_code == 202
    uat = env(site_a, "UAT")
    drift = api_client_for(cast["releasemgr"]).get(f"/api/v1/environments/{uat.pk}/drift/").json()
    assert drift["against"] == str(env(site_a, "PROD"))
    assert api.post(f"/api/v1/environments/{uat.pk}/refresh/").status_code == 403
