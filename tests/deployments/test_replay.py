"""Replay reconciliation: recorded interface messages replayed on a scratch copy of UAT before and
after the release's migration, every message's output compared, bound to the artifact and feeding the
"Messages reconciled" gate only where UAT's pipeline declares the replay (issue 19 item 4)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from deployments import checks
from deployments.models import CheckKind, CheckRun
from environments.models import Environment
from environments.pipelines import pipeline_problems
from plant.plantdb import database_of
from releases import gates, services
from tests import factories
from tests.conftest import api_client_for, client_for
from workflow import services as wf

pytestmark = pytest.mark.django_db

REPLAY = {
    "messages": "SELECT message_key, interface, payload FROM messages ORDER BY id",
    "query": "INSERT INTO confirmations (message_key, order_no, qty) VALUES "
    "(:key, json_extract(:payload, '$.order'), json_extract(:payload, '$.qty'))",
    "output": "SELECT order_no, qty FROM confirmations WHERE message_key = :key ORDER BY id",
}
# What the release's migration does to the interface: PO-2 is confirmed one part more, PO-3 is
# dropped, PO-4 is confirmed twice; PO-1 stays as it was.
TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS round_up AFTER INSERT ON confirmations WHEN NEW.order_no = 'PO-2' "
    "BEGIN UPDATE confirmations SET qty = qty + 1 WHERE id = NEW.id; END;"
    "CREATE TRIGGER IF NOT EXISTS drop_scrap AFTER INSERT ON confirmations WHEN NEW.order_no = 'PO-3' "
    "BEGIN DELETE FROM confirmations WHERE id = NEW.id; END;"
    "CREATE TRIGGER IF NOT EXISTS echo AFTER INSERT ON confirmations WHEN NEW.order_no = 'PO-4' "
    "BEGIN INSERT INTO confirmations (message_key, order_no, qty) VALUES (NEW.message_key, NEW.order_no, NEW.qty); END;"
)
CLEAN = "CREATE TABLE IF NOT EXISTS label_layouts (id INTEGER PRIMARY KEY);"


def record_messages(env: Environment, keys=("M1", "M2", "M3", "M4")) -> None:
    """The message set as UAT holds it after a refresh from PROD: a table of recorded messages."""
    with closing(sqlite3.connect(database_of(env).target)) as conn, conn:
        conn.executescript(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, message_key TEXT, interface TEXT, payload TEXT);"
            "CREATE TABLE confirmations (id INTEGER PRIMARY KEY, message_key TEXT, order_no TEXT, qty INTEGER);"
        )
        conn.executemany(
            "INSERT INTO messages (message_key, interface, payload) VALUES (?, 'erp.order', ?)",
            [(key, json.dumps({"order": f"PO-{key[1:]}", "qty": 10})) for key in keys],
        )


@pytest.fixture
def uat(site_a) -> Environment:
    env = Environment.objects.get(site=site_a, tier="UAT")
    env.pipeline = {**env.pipeline, "replay": REPLAY}
    env.save(update_fields=["pipeline"])
    record_messages(env)
    return env


def release_with(cast, version, sql):
    return services.create_release(
        cast["dev"],
        product="MES",
        version=version,
        migration_sql=sql,
        artifact=SimpleUploadedFile(f"mes-{version}.json", version.encode()),
    )


def gate_of(rfc):
    return next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Messages reconciled")


def test_reconciliation_reports_the_differing_missing_and_duplicated_message_exactly(cast, site_a, uat):
    """R7: the replay on a copy before and after the migration names each message that changed."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", TRIGGERS))
    before = database_of(uat).checksum()
    run = checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    result = run.result
    assert result["messages"] == 4
    assert result["counts"] == {"matched": 1, "differing": 1, "missing": 1, "duplicated": 1}
    assert result["matched"] == ["M1"]
    assert result["differing"] == [
        {"key": "M2", "interface": "erp.order", "before": [["PO-2", 10]], "after": [["PO-2", 11]]}
    ]
    assert result["missing"] == [
        {"key": "M3", "interface": "erp.order", "before": [["PO-3", 10]], "after": []}
    ]
    assert result["duplicated"] == [
        {
            "key": "M4",
            "interface": "erp.order",
            "before": [["PO-4", 10]],
            "after": [["PO-4", 10], ["PO-4", 10]],
        }
    ]
    assert "1 matched, 1 differing, 1 missing, 1 duplicated" in run.summary
    assert database_of(uat).checksum() == before  # scratch copies only, UAT untouched
    event = AuditEvent.objects.get(action="releases.check.failed")
    assert event.after["kind"] == "replay" and event.after["counts"]["differing"] == 1
    gate = gate_of(rfc)
    assert not gate.passed and "1 differing" in gate.reason


def test_a_key_recorded_twice_is_duplicated(cast, site_a, uat):
    with closing(sqlite3.connect(database_of(uat).target)) as conn, conn:
        conn.execute(
            "INSERT INTO messages (message_key, interface, payload) SELECT message_key, interface, "
            "payload FROM messages WHERE message_key = 'M1'"
        )
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CLEAN))
    run = checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert run.result["counts"] == {"matched": 3, "differing": 0, "missing": 0, "duplicated": 1}
    assert run.result["duplicated"][0]["key"] == "M1"


def test_a_clean_replay_passes_and_a_new_artifact_needs_a_new_run(cast, site_a, uat):
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CLEAN))
    assert (
        checks.run_check(checks.request_check(cast["releasemgr"], rfc, CheckKind.REPLAY, site_a).pk)
        == "passed"
    )
    assert CheckRun.objects.get().result["counts"] == {
        "matched": 4,
        "differing": 0,
        "missing": 0,
        "duplicated": 0,
    }
    gate = gate_of(rfc)
    assert gate.passed and "4 matched" in gate.reason
    wf.update_rfc(cast["dev"], rfc, release=release_with(cast, "1.0.2", CLEAN))
    rfc.refresh_from_db()
    gate = gate_of(rfc)
    assert not gate.passed and "has no run for artifact" in gate.reason


def test_the_gate_applies_only_where_the_pipeline_declares_the_replay(cast, site_a):
    """Fail closed where declared; not configured elsewhere (a site whose UAT records no messages)."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CLEAN))
    gate = gate_of(rfc)
    assert gate.passed and "not configured for" in gate.reason
    with pytest.raises(ValidationError) as refused:
        checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert 'add "replay": {"messages":' in str(refused.value)
    uat = Environment.objects.get(site=site_a, tier="UAT")
    uat.pipeline = {**uat.pipeline, "replay": REPLAY}
    uat.save(update_fields=["pipeline"])
    gate = gate_of(rfc)
    assert not gate.passed and "has no run for artifact" in gate.reason


def test_no_recorded_message_fails_closed(cast, site_a, uat):
    with closing(sqlite3.connect(database_of(uat).target)) as conn, conn:
        conn.execute("DELETE FROM messages")
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CLEAN))
    run = checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert "No recorded message to replay" in run.summary


@pytest.mark.parametrize(
    ("replay", "says"),
    [
        ({"messages": "SELECT 1"}, "it needs 'query'"),
        ({**REPLAY, "output": " "}, "'output' is SQL text"),
        ({**REPLAY, "adapter": "sql"}, "it does not know 'adapter'"),
        ("SELECT 1", "it needs 'messages'"),
    ],
)
def test_a_bad_replay_spec_is_refused_saying_what_to_add(replay, says):
    [problem] = pipeline_problems({"replay": replay}, "UAT")
    assert problem.startswith("replay: ") and says in problem
    assert 'write "replay": {"messages": "SELECT key, interface, payload FROM' in problem


def test_a_bad_spec_saved_anyway_fails_the_run_with_the_sentence(cast, site_a, uat):
    Environment.objects.filter(pk=uat.pk).update(
        pipeline={**uat.pipeline, "replay": {"messages": "SELECT 1"}}
    )
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CLEAN))
    run = checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert "it needs 'query'" in run.summary and "write" in run.summary


def test_the_rfc_page_and_the_api_show_the_reconciliation(cast, site_a, uat):
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", TRIGGERS))
    response = client_for(cast["dev"]).post(
        reverse("releases:request_check", args=[rfc.uuid]), {"site": site_a.code, "kind": "replay"}
    )
    assert response.status_code == 302
    checks.run_check(CheckRun.objects.get(kind="replay").pk)
    page = client_for(cast["dev"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-testid="replay-report"' in page
    for key in ("M2", "M3", "M4"):
        assert f"<code>{key}</code>" in page
    listed = api_client_for(cast["dev"]).get(f"/api/v1/rfcs/{rfc.uuid}/checks/").json()
    [replay] = [c for c in listed if c["kind"] == "replay"]
    assert replay["state"] == "failed" and replay["result"]["counts"]["duplicated"] == 1
    posted = api_client_for(cast["dev"]).post(
        f"/api/v1/rfcs/{rfc.uuid}/checks/", {"kind": "replay", "site": site_a.code}, format="json"
    )
    assert posted.status_code == 202 and posted.json()["kind"] == "replay"


def test_the_evidence_pack_carries_the_reconciliation(cast, site_a, uat, tmp_path):
    """The JSON pack keeps the per-key report; the PDF prints the counts and the changed keys."""
    import re
    import subprocess

    from reports import evidence_pack

    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", TRIGGERS))
    checks.run_check(checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a).pk)
    data = evidence_pack.pack_data(rfc)
    [replay] = data["checks"]
    assert replay["result"]["counts"] == {"matched": 1, "differing": 1, "missing": 1, "duplicated": 1}
    path = tmp_path / "pack.pdf"
    path.write_bytes(evidence_pack.render_pdf(data))
    text = re.sub(
        r"\s+",
        " ",
        subprocess.run(
            ["pdftotext", "-raw", str(path), "-"], check=True, capture_output=True, text=True
        ).stdout,
    )
    assert "1 matched, 1 differing, 1 missing, 1 duplicated" in text
    assert "M2 differing PO-2 · 10 PO-2 · 11" in text
    assert "M4 duplicated" in text


# --- The same reconciliation on both vendors, with plain SQL ------------------------------------------------
PLAIN = {
    "messages": "SELECT message_key, interface, payload FROM messages ORDER BY id",
    "query": "INSERT INTO confirmations (message_key, order_no, qty) "
    "SELECT :key, order_no, qty FROM routing WHERE order_no = :payload",
    "output": "SELECT order_no, qty FROM confirmations WHERE message_key = :key ORDER BY order_no, qty",
}
PLAIN_SEED = (
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, message_key TEXT, interface TEXT, payload TEXT);"
    "CREATE TABLE confirmations (message_key TEXT, order_no TEXT, qty INTEGER);"
    "CREATE TABLE routing (order_no TEXT, qty INTEGER);"
    "INSERT INTO messages VALUES (1, 'M1', 'erp.order', 'PO-1'), (2, 'M2', 'erp.order', 'PO-2'),"
    " (3, 'M3', 'erp.order', 'PO-3'), (4, 'M4', 'erp.order', 'PO-4');"
    "INSERT INTO routing VALUES ('PO-1', 10), ('PO-2', 10), ('PO-3', 10), ('PO-4', 10);"
)
# PO-2 routed with another quantity, PO-3 no longer routed, PO-4 routed twice.
PLAIN_CHANGE = (
    "UPDATE routing SET qty = 11 WHERE order_no = 'PO-2'; DELETE FROM routing WHERE order_no = 'PO-3';"
    "INSERT INTO routing VALUES ('PO-4', 10);"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_uat(request, site_a):
    """Site A's UAT on a SQLite file or on a PostgreSQL database of its own, seeded with messages."""
    import uuid

    from django.db import connection

    from plant.plantdb import PostgresDatabase

    env = Environment.objects.get(site=site_a, tier="UAT")
    made = None
    if request.param == "sqlite":
        db = database_of(env)
    else:
        s = connection.settings_dict
        base = f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
        admin = PostgresDatabase(f"{base}/postgres")
        made = f"cc_replay_{uuid.uuid4().hex[:8]}"
        with admin._connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{made}"')
        db = PostgresDatabase(f"{base}/{made}")
        env.pipeline = {**env.pipeline, "backup": {"adapter": "postgres", "dsn": db.target}}
    db.run_script(PLAIN_SEED)
    env.pipeline = {**env.pipeline, "replay": PLAIN}
    env.save(update_fields=["pipeline"])
    yield env
    if made:
        with admin._connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')


def test_the_reconciliation_is_the_same_on_sqlite_and_postgresql(cast, site_a, any_uat):
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", PLAIN_CHANGE))
    run = checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert run.result["counts"] == {"matched": 1, "differing": 1, "missing": 1, "duplicated": 1}
    assert [m["key"] for k in ("differing", "missing", "duplicated") for m in run.result[k]] == [
        "M2",
        "M3",
        "M4",
    ]
    assert run.result["duplicated"][0]["after"] == [["PO-4", 10], ["PO-4", 10]]


def test_a_message_whose_replay_fails_is_differing_and_leaves_nothing_behind(cast, site_a, uat):
    """After the migration the interface refuses PO-1: that message is differing, with the error."""
    sql = "ALTER TABLE confirmations ADD COLUMN plant TEXT NOT NULL DEFAULT 'x'; CREATE TRIGGER IF NOT EXISTS refuse "
    sql += "BEFORE INSERT ON confirmations WHEN NEW.order_no = 'PO-1' BEGIN SELECT RAISE(ABORT, 'plant required'); END;"
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", sql))
    run = checks.request_check(cast["dev"], rfc, CheckKind.REPLAY, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert run.result["counts"] == {"matched": 3, "differing": 1, "missing": 0, "duplicated": 0}
    assert run.result["differing"][0]["after"] == [["error: plant required"]]
