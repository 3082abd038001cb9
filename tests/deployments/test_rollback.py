"""Rollback that loses nothing (R3, X4) and what a deployment records (E8, X7), against the real
demo plant: production records are written between the apply and the smoke test, and counted after.

The smoke test's delay is a due time on the row; the tests move the clock past it (never sleep).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from core import clock
from demo_plant.artifacts import build
from deployments import engine, scheduling
from deployments.models import Deployment, DeploymentState
from environments.models import Environment
from outbox import services as outbox
from plant import evidence
from releases import services
from tests import factories
from tests.conftest import client_for
from tests.demo_plant_server import site_plant

pytestmark = pytest.mark.django_db
S = DeploymentState
MIGRATION = "CREATE TABLE IF NOT EXISTS label_layouts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
UNDO = "DROP TABLE IF EXISTS label_layouts;"
DELAY = 600


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def plant(tmp_path, site_a):
    with site_plant(tmp_path / "plant", site_a) as root:
        dev = Environment.objects.get(site=site_a, tier="DEV")
        dev.pipeline = {**dev.pipeline, "smoke_delay_seconds": DELAY}
        dev.save(update_fields=["pipeline"])
        yield root


@pytest.fixture
def artifacts(tmp_path):
    return build(tmp_path / "artifacts")


def release(user, artifact, version, undo=UNDO):
    return services.create_release(
        user,
        product="MES",
        version=version,
        migration_sql=MIGRATION,
        undo_sql=undo,
        artifact=SimpleUploadedFile(artifact.name, artifact.read_bytes()),
    )


def produce(root, site, count: int) -> None:
    """The line keeps running: `count` production records written to the plant's database."""
    with closing(sqlite3.connect(root / site.code / "DEV" / "mes.sqlite3")) as db, db:
        db.executemany(
            "INSERT INTO cycles (line, completed_at, good_parts) VALUES (?, ?, ?)",
            [("Line 2", clock.now().isoformat(), 10 + n) for n in range(count)],
        )


def cycles(root, site) -> int:
    with closing(sqlite3.connect(root / site.code / "DEV" / "mes.sqlite3")) as db:
        return db.execute("SELECT count(*) FROM cycles").fetchone()[0]


def tables(root, site) -> set[str]:
    with closing(sqlite3.connect(root / site.code / "DEV" / "mes.sqlite3")) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def rfc_for(cast, site, rel):
    """An RFC for the major release (2.x on a plant at 1.0.0): downtime and retraining declared."""
    return factories.rfc(
        cast["dev"], site, release=rel, estimated_downtime_minutes=10, retraining_note="Shift leads briefed."
    )


def run_through_the_wait(cast, site, rel, root, written: int) -> Deployment:
    """Deploy to DEV, let the line write `written` records while the smoke test waits, then go on."""
    rfc = rfc_for(cast, site, rel)
    deployment = scheduling.deploy_now(cast["dev"], rfc, Environment.objects.get(site=site, tier="DEV"))
    with time_machine.travel(clock.now(), tick=False) as traveller:
        assert engine.run(deployment.pk, owner="w") == "waiting for the smoke test"
        assert "label_layouts" in tables(root, site)  # applied
        produce(root, site, written)
        traveller.shift(timedelta(seconds=DELAY + 1))
        engine.run(deployment.pk, owner="w")
    deployment.refresh_from_db()
    return deployment


def journal(deployment) -> dict[str, str]:
    return {f"{s.phase}:{s.name}": s.state for s in deployment.steps.all()}


def test_undo_script_rollback_keeps_the_production_records_written_after_the_apply(
    cast, site_a, plant, artifacts
):
    """R3, X4: the bad release rolls back by its undo script; the 7 records the line wrote during the
    wait are still there (counted), the migration's table is gone, and the RPO is zero."""
    before = cycles(plant, site_a)
    deployment = run_through_the_wait(cast, site_a, release(cast["dev"], artifacts["bad"], "2.4.2"), plant, 7)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    assert cycles(plant, site_a) == before + 7
    assert "label_layouts" not in tables(plant, site_a)
    steps = journal(deployment)
    assert steps["rollback:undo"] == steps["rollback:verify_undo"] == "succeeded"
    assert "rollback:restore_backup" not in steps and "rollback:verify_rollback" not in steps
    assert deployment.rpo["how"] == "undo script" and deployment.rpo["seconds"] == 0
    assert deployment.rpo["rows_kept"]["cycles"] == 7  # (and the labels the smoke test printed)
    assert "No production data was discarded (RPO 0 s): rows written since the backup are kept" in (
        deployment.outcome
    )
    assert "cycles +7" in deployment.outcome
    timed = AuditEvent.objects.get(action="releases.deployment.rollback_timed")
    assert timed.after["rpo"]["kept"] is True
    page = client_for(cast["releasemgr"]).get(
        reverse("releases:deployment", args=[deployment.rfc.uuid, deployment.uuid])
    )
    assert 'data-testid="deployment-rpo"' in page.content.decode()
    assert "No production data was discarded" in page.content.decode()


def test_without_an_undo_script_the_backup_is_restored_and_the_loss_is_reported(
    cast, site_a, plant, artifacts
):
    """R3, X4: no undo script: the backup is restored; the RPO names the time span since the backup
    and the tables touched since (the records the line wrote are lost, and the report says so)."""
    before = cycles(plant, site_a)
    rel = release(cast["dev"], artifacts["bad"], "2.4.2", undo="")
    deployment = run_through_the_wait(cast, site_a, rel, plant, 5)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    assert cycles(plant, site_a) == before  # restored: the 5 records are gone
    steps = journal(deployment)
    assert steps["rollback:restore_backup"] == steps["rollback:verify_rollback"] == "succeeded"
    assert "rollback:undo" not in steps
    rpo = deployment.rpo
    assert rpo["how"] == "backup restore" and rpo["seconds"] >= DELAY
    assert rpo["tables"] == ["cycles", "label_layouts"]
    assert rpo["rows_now"]["cycles"] == before + 5 and rpo["rows_in_backup"]["cycles"] == before
    assert (
        "production data written in the" in deployment.outcome
        and "cycles, label_layouts" in deployment.outcome
    )
    page = (
        client_for(cast["releasemgr"])
        .get(reverse("releases:deployment", args=[deployment.rfc.uuid, deployment.uuid]))
        .content.decode()
    )
    assert "Rows before the restore" in page and "<code>cycles</code>" in page


def test_a_failing_undo_script_falls_back_to_the_backup(cast, site_a, plant, artifacts):
    """R3: an undo script that fails leaves its transaction unkept; the backup is restored instead."""
    rel = release(cast["dev"], artifacts["bad"], "2.4.2", undo="DROP TABLE no_such_table;")
    deployment = run_through_the_wait(cast, site_a, rel, plant, 2)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    steps = journal(deployment)
    assert steps["rollback:undo"] == "failed" and steps["rollback:restore_backup"] == "succeeded"
    assert deployment.rpo["how"] == "backup restore"


def test_the_fingerprint_after_a_deployment_is_what_then_runs(cast, site_a, plant, artifacts):
    """E8: the environment's fingerprint is taken afresh after the deployment: drift right after it
    shows no false difference, and the deployment keeps the fingerprints from before and after."""
    deployment = run_through_the_wait(
        cast, site_a, release(cast["dev"], artifacts["good"], "2.4.1"), plant, 1
    )
    assert deployment.state == S.SUCCEEDED, deployment.outcome
    dev = Environment.objects.get(site=site_a, tier="DEV")
    assert dev.fingerprint == evidence.compute_fingerprint(dev) == deployment.fingerprint_after
    assert deployment.fingerprint_before and deployment.fingerprint_before != deployment.fingerprint_after
    assert "2.4.1" in str(deployment.fingerprint_after) and "2.4.1" not in str(deployment.fingerprint_before)


def test_several_smoke_checks_all_run_and_each_has_its_result(cast, site_a, plant, artifacts):
    """X7: a pipeline may list several smoke checks; all must pass; each has its own result."""
    dev = Environment.objects.get(site=site_a, tier="DEV")
    http = dev.pipeline["smoke"]
    dev.pipeline = {
        **dev.pipeline,
        "smoke_delay_seconds": 0,
        "smoke": [
            {**http, "name": "label prints"},
            {"adapter": "command", "command": ["true"], "name": "queue drained"},
            {"adapter": "command", "command": ["false"], "name": "orders confirm"},
        ],
    }
    dev.save(update_fields=["pipeline"])
    rfc = rfc_for(cast, site_a, release(cast["dev"], artifacts["good"], "2.4.1"))
    deployment = scheduling.deploy_now(cast["dev"], rfc, dev)
    engine.run(deployment.pk, owner="w")
    deployment.refresh_from_db()
    baseline = deployment.steps.get(phase="forward", name="baseline")
    assert [(c["name"], c["ok"]) for c in baseline.result["checks"]] == [
        ("label prints", True),
        ("queue drained", True),
        ("orders confirm", False),
    ]
    assert deployment.state == S.FAILED  # unhealthy before the change: nothing applied
    assert "not healthy" in deployment.outcome and not deployment.steps.filter(name="apply").exists()


def test_a_rollback_past_its_budget_alerts_once(cast, site_a, mailoutbox):
    """X4: a rollback running past the environment's budget (15 minutes by default) sends one urgent
    alert to the site's release managers and admins, however many beats ask; a young one sends none."""
    rfc = factories.rfc(cast["dev"], site_a)
    env = Environment.objects.get(site=site_a, tier="PROD")
    now = clock.now()
    stuck = Deployment.objects.create(
        rfc=rfc,
        environment=env,
        scheduled_start=now - timedelta(minutes=40),
        scheduled_end=now + timedelta(minutes=40),
        duration_minutes=30,
        scheduled_by=cast["releasemgr"],
        state=S.ROLLING_BACK,
        rollback_started_at=now,
    )
    with time_machine.travel(now + timedelta(minutes=14, seconds=59), tick=False) as traveller:
        assert engine.overdue_rollbacks() == []
        traveller.shift(timedelta(seconds=2))
        assert engine.overdue_rollbacks() == [stuck.pk]
        assert engine.overdue_rollbacks() == []
        outbox.deliver()  # the worker's delivery once the alert's transaction commits
    urgent = [m for m in mailoutbox if m.subject.startswith("[URGENT] Rollback past 15 minutes")]
    assert len(urgent) == 1 and {"releasemgr@plant.test", "admin@plant.test"} <= set(urgent[0].to)
    event = AuditEvent.objects.get(action="releases.deployment.rollback_overdue")
    assert event.after["budget_minutes"] == 15 and event.after["minutes"] == pytest.approx(15.0, abs=0.1)
    stuck.refresh_from_db()
    assert stuck.rollback_alerted_at is not None


def test_a_slow_rollback_step_alerts_when_it_ends(cast, site_a, plant, artifacts, mailoutbox, monkeypatch):
    """X4: the worker itself alerts when a rollback step ran past the budget (a 20-minute undo)."""
    original = engine._Runner.undo
    rfc = rfc_for(cast, site_a, release(cast["dev"], artifacts["bad"], "2.4.2"))
    deployment = scheduling.deploy_now(cast["dev"], rfc, Environment.objects.get(site=site_a, tier="DEV"))
    with time_machine.travel(clock.now(), tick=False) as traveller:

        def slow_undo(runner, apply_row):
            traveller.shift(timedelta(minutes=20))
            return original(runner, apply_row)

        monkeypatch.setattr(engine._Runner, "undo", slow_undo)
        engine.run(deployment.pk, owner="w")
        traveller.shift(timedelta(seconds=DELAY + 1))
        assert engine.run(deployment.pk, owner="w") == S.ROLLED_BACK
        outbox.deliver()
    assert AuditEvent.objects.filter(action="releases.deployment.rollback_overdue").count() == 1
    assert len([m for m in mailoutbox if "Rollback past 15 minutes" in m.subject]) == 1
    timed = AuditEvent.objects.get(action="releases.deployment.rollback_timed")
    assert timed.after["seconds"] >= 20 * 60
