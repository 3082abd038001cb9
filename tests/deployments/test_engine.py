"""The deployment engine (X1–X7) against the real demo plant: its HTTP server runs as a
subprocess, its database and application directory are real files, the adapters run for real.

These tests call the engine in-process; tests/deployments/test_engine_workers.py runs it in real Celery workers.
"""

from __future__ import annotations

import collections
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import Signature
from audit.models import AuditEvent
from demo_plant import ledger
from deployments import engine, scheduling
from deployments.models import Deployment, DeploymentState, DeploymentStep, StepState
from environments.models import Environment
from outbox import services as outbox
from plant import adapters
from releases import services
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from workflow import services as wf

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
S = DeploymentState
BERLIN = ZoneInfo("Europe/Berlin")
MIGRATION = "CREATE TABLE IF NOT EXISTS label_layouts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
UNDO = "DROP TABLE IF EXISTS label_layouts;"


def artifact_release(user, path: Path, version: str, behaviour: dict | None = None):
    content = (
        path.read_bytes()
        if behaviour is None
        else json.dumps({"product": "MES", "version": version, **behaviour}).encode()
    )
    return services.create_release(
        user,
        product="MES",
        version=version,
        migration_sql=MIGRATION,
        undo_sql=UNDO,
        artifact=SimpleUploadedFile(f"mes-{version}.json", content),
    )


def major_rfc(people, site, release, **extra):
    return factories.rfc(
        people["dev"],
        site,
        release=release,
        estimated_downtime_minutes=10,
        retraining_note="Shift leads briefed.",
        **extra,
    )


def env_of(site, tier) -> Environment:
    return Environment.objects.get(site=site, tier=tier)


def app_version(root: Path, site, tier) -> str:
    return json.loads((root / site.code / tier / "app" / "release.json").read_text())["version"]


def tables(root: Path, site, tier) -> set[str]:
    with sqlite3.connect(root / site.code / tier / "mes.sqlite3") as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def steps(deployment) -> dict[str, str]:
    return {f"{s.phase}:{s.name}": s.state for s in deployment.steps.all()}


def deploy(people, site, tier, release, **extra) -> Deployment:
    rfc = major_rfc(people, site, release, **extra)
    factories.promote(rfc, site, tiers={"DEV": (), "UAT": ("DEV",), "PROD": ("DEV", "UAT")}[tier])
    deployment = scheduling.deploy_now(people["dev"], rfc, env_of(site, tier))
    engine.run(deployment.pk, owner="test-worker")
    deployment.refresh_from_db()
    return deployment


# --- Outcomes (X1–X4) ------------------------------------------------------------------------------
def test_success_applies_verifies_and_commits(cast, site_a, plant, artifacts):
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.SUCCEEDED, deployment.outcome
    assert steps(deployment) == {
        "forward:verify_checksum": "succeeded",
        "forward:baseline": "succeeded",
        "forward:vm_snapshot": "skipped",
        "forward:snapshot": "succeeded",
        "forward:backup": "succeeded",
        "forward:signal_baseline": "succeeded",
        "forward:apply": "succeeded",
        "forward:config": "skipped",
        "forward:equipment": "simulated",
        "forward:wait": "succeeded",
        "forward:smoke": "succeeded",
        "forward:compare": "succeeded",
        "forward:signals": "succeeded",
        "forward:commit": "succeeded",
    }
    assert app_version(plant, site_a, "DEV") == "2.4.1" and "label_layouts" in tables(plant, site_a, "DEV")
    assert env_of(site_a, "DEV").active_version == "2.4.1"
    # E5: DEV never writes to equipment; the step ran told to simulate, and the journal says so.
    equipment = deployment.steps.get(name="equipment")
    assert "SIMULATED" in equipment.output and not (plant / site_a.code / "DEV" / "equipment.log").exists()
    assert AuditEvent.objects.filter(
        action="environments.environment.deployed", site_code=site_a.code
    ).exists()


def test_smoke_failure_rolls_back_and_verifies_the_rollback(cast, site_a, plant, artifacts):
    release = artifact_release(cast["dev"], artifacts["bad"], "2.4.2")
    deployment = deploy(cast, site_a, "UAT", release)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    journal = steps(deployment)
    assert journal["forward:smoke"] == "failed" and "forward:commit" not in journal
    # R3: the undo script in a transaction, verified; the backup is not restored (no data lost).
    assert journal["rollback:revert_equipment"] == "simulated"
    assert journal["rollback:restore_snapshot"] == journal["rollback:undo"] == "succeeded"
    assert journal["rollback:verify_undo"] == "succeeded" and "rollback:restore_backup" not in journal
    assert (
        deployment.rpo["how"] == "undo script" and deployment.rpo["kept"] and deployment.rpo["seconds"] == 0
    )
    assert "No production data was discarded (RPO 0 s)" in deployment.outcome
    assert app_version(plant, site_a, "UAT") == "2.3.1" and "label_layouts" not in tables(
        plant, site_a, "UAT"
    )
    assert env_of(site_a, "UAT").active_version == "1.0.0"
    timed = AuditEvent.objects.get(action="releases.deployment.rollback_timed")
    assert 0 < timed.after["seconds"] < 15 * 60  # X4
    assert "smoke test failed" in deployment.outcome


def test_latency_much_worse_rolls_back(cast, site_a, plant, artifacts):
    """X3 through the real plant: twice the label latency rolls back. The measured times carry the
    machine's own overhead on both sides, so the margin is wide; the 20 % boundary itself is pinned
    with exact figures in the rule tests."""
    app = plant / site_a.code / "DEV" / "app" / "release.json"
    app.write_text(json.dumps({**json.loads(app.read_text()), "label_delay_ms": 200}))
    release = artifact_release(
        cast["dev"], artifacts["good"], "2.4.1", {"label_delay_ms": 400, "broken": False}
    )
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    compare = deployment.steps.get(name="compare")
    assert compare.state == StepState.FAILED and compare.result["change_percent"] > 20
    assert "more than 20 % worse" in deployment.outcome and app_version(plant, site_a, "DEV") == "2.3.1"


def test_snapshot_failure_applies_nothing(cast, site_a, plant, artifacts):
    dev = env_of(site_a, "DEV")
    dev.pipeline = {**dev.pipeline, "snapshot": {"adapter": "directory", "path": str(plant / "no-such-dir")}}
    dev.save(update_fields=["pipeline"])
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.FAILED and "Nothing was applied" in deployment.outcome
    assert "forward:apply" not in steps(deployment) and not deployment.steps.filter(phase="rollback").exists()
    assert app_version(plant, site_a, "DEV") == "2.3.1"


def test_changed_artifact_is_refused_before_anything_runs(cast, site_a, plant, artifacts):
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    from plant import uploads

    uploads.path_of("artifacts", release.artifact_file).write_bytes(b'{"product": "MES", "version": "6.6.6"}')
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.FAILED and "checksum differs" in deployment.outcome
    assert list(steps(deployment)) == ["forward:verify_checksum"]


def test_failed_rollback_alerts_release_managers_and_admins(cast, site_a, plant, artifacts, mailoutbox):
    dev = env_of(site_a, "DEV")
    dev.pipeline = {
        **dev.pipeline,
        "backup": {"adapter": "sqlite", "database": str(plant / site_a.code / "DEV" / "mes.sqlite3")},
    }
    dev.save(update_fields=["pipeline"])
    release = services.create_release(  # an undo script that fails: the rollback falls back to the backup
        cast["dev"],
        product="MES",
        version="2.4.2",
        migration_sql=MIGRATION,
        undo_sql="DROP TABLE no_such_table;",
        artifact=SimpleUploadedFile("mes-2.4.2.json", artifacts["bad"].read_bytes()),
    )
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, dev)
    # The backup disappears between the backup step and the rollback (a full disk, an operator):
    original = engine._Runner.do_apply

    def apply_and_lose_backup(runner):
        result = original(runner)
        (runner.context().work_dir / "backup.sqlite3").unlink()
        return result

    engine._Runner.do_apply = apply_and_lose_backup
    try:
        engine.run(deployment.pk, owner="test-worker")
    finally:
        engine._Runner.do_apply = original
    deployment.refresh_from_db()
    assert deployment.state == S.ROLLBACK_FAILED
    assert steps(deployment)["rollback:undo"] == steps(deployment)["rollback:restore_backup"] == "failed"
    assert "Manual recovery:" in deployment.outcome and "Restore the application files" in deployment.outcome
    outbox.deliver()  # the worker's delivery once the alert's transaction commits
    urgent = [m for m in mailoutbox if m.subject.startswith("[URGENT] Rollback failed")]
    assert len(urgent) == 1 and {"releasemgr@plant.test", "admin@plant.test"} <= set(urgent[0].to)


# --- The journal, the lease and the wait -------------------------------------------------------------
def test_a_live_lease_stops_a_second_worker_and_a_finished_deployment_is_left_alone(
    cast, site_a, plant, artifacts
):
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, "DEV"))
    assert engine.acquire(deployment.pk, "worker-a")
    assert engine.run(deployment.pk, owner="worker-b") == "leased by another worker"
    assert not deployment.steps.exists()
    engine.release(deployment.pk, "worker-a")
    assert engine.run(deployment.pk, owner="worker-b") == S.SUCCEEDED
    before = list(deployment.steps.values_list("pk", "finished_at"))
    assert (
        engine.run(deployment.pk, owner="worker-c") == S.SUCCEEDED
    )  # a duplicate delivery: nothing runs again
    assert list(deployment.steps.values_list("pk", "finished_at")) == before


def test_a_run_reads_the_rfc_and_its_release_once_not_per_step(cast, site_a, plant, artifacts):
    """Issue 20 (dispatch under load): a worker re-reads the deployment's own row before each step
    (its lease, a rollback request) but not the RFC, the release and the environment, which a
    deployment never changes; refetching them per step was a fifth of a run's queries."""
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, "DEV"))
    with CaptureQueriesContext(connection) as run:
        assert engine.run(deployment.pk, owner="w") == S.SUCCEEDED
    reads = collections.Counter(
        table
        for query in run.captured_queries
        if query["sql"].startswith("SELECT")
        for table in ("releases_rfc", "releases_release", "environments_environment")
        if f'FROM "{table}"' in query["sql"]
    )
    assert deployment.steps.count() == 14  # every forward step ran (each re-read the deployment's row)
    # One read to start, one by the RFC workflow following the move, the gates' own: never one per step.
    assert reads["releases_rfc"] <= 5 and reads["releases_release"] <= 5, reads
    assert reads["environments_environment"] <= 5, reads


def test_the_smoke_delay_is_a_due_row_not_a_sleeping_task(cast, site_a, plant, artifacts):
    dev = env_of(site_a, "DEV")
    dev.pipeline = {**dev.pipeline, "smoke_delay_seconds": 900}
    dev.save(update_fields=["pipeline"])
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    rfc = major_rfc(cast, site_a, release)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        deployment = scheduling.deploy_now(cast["dev"], rfc, dev)
        assert engine.run(deployment.pk, owner="w") == "waiting for the smoke test"
        deployment.refresh_from_db()
        assert deployment.state == S.VERIFYING and deployment.next_action_at == start + timedelta(seconds=900)
        assert not deployment.lease_owner and "forward:smoke" not in steps(deployment)
        assert deployment.pk not in engine.dispatch()
    with time_machine.travel(start + timedelta(seconds=901), tick=False):
        assert deployment.pk in list(
            engine.due_queryset(start + timedelta(seconds=901)).values_list("pk", flat=True)
        )
        assert engine.run(deployment.pk, owner="w") == S.SUCCEEDED


def test_interrupted_apply_is_never_repeated(cast, site_a, plant, artifacts):
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, "DEV"))
    original = engine._Runner.do_apply

    def die_in_apply(runner):
        DeploymentStep.objects.create(
            deployment=runner.deployment,
            order=5,
            phase="forward",
            name="apply",
            started_at=datetime.now(UTC),
            worker=runner.owner,
        )
        raise engine.LeaseLost  # the worker is gone mid-step, its journal row says "running"

    engine._Runner.do_apply = die_in_apply
    try:
        engine.run(deployment.pk, owner="dying-worker")
    finally:
        engine._Runner.do_apply = original
    assert engine.run(deployment.pk, owner="next-worker") == S.ROLLED_BACK
    deployment.refresh_from_db()
    apply = deployment.steps.get(name="apply")
    assert apply.state == StepState.INTERRUPTED and "not repeated" in apply.output
    assert app_version(plant, site_a, "DEV") == "2.3.1"


@pytest.mark.parametrize(
    ("step_name", "how", "ends"),
    [
        ("baseline", "raises", S.SUCCEEDED),  # side-effect free: the next worker runs it again
        ("baseline", "reports a failure", S.SUCCEEDED),  # an adapter that caught Celery's exception
        ("apply", "raises", S.ROLLED_BACK),  # unsafe to repeat: interrupted, rolled back
    ],
)
def test_a_cold_shutdown_inside_a_step_is_not_the_step_failing(
    cast, site_a, plant, artifacts, monkeypatch, step_name, how, ends
):
    """FAULTS.md case 23: SIGQUIT to a worker makes Celery raise inside the running task (with the solo
    pool: "does not implement kill_job"). That is the worker stopping, not the step or the environment
    failing: the journal row stays running, as after a SIGKILL, and the next worker takes over."""
    from celery.worker import state as worker_state

    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, "DEV"))
    original = engine._Runner.step

    def step(runner, phase, name, action):
        if name != step_name:
            return original(runner, phase, name, action)
        monkeypatch.setattr(engine._Runner, "step", original)  # only the first time

        def stopped():
            monkeypatch.setattr(worker_state, "should_terminate", 1)  # what Celery's handler sets
            if how == "raises":
                raise NotImplementedError(
                    "<class 'celery.concurrency.solo.TaskPool'> does not implement kill_job"
                )
            return adapters.StepResult(False, "error: interrupted system call")

        return original(runner, phase, name, stopped)

    monkeypatch.setattr(engine._Runner, "step", step)
    assert engine.run(deployment.pk, owner="stopping-worker") == "worker stopping"
    deployment.refresh_from_db()
    row = deployment.steps.get(name=step_name)
    assert row.state == StepState.RUNNING and deployment.state == S.RUNNING and not deployment.lease_owner
    assert not deployment.steps.filter(state=StepState.FAILED).exists()

    monkeypatch.setattr(worker_state, "should_terminate", None)  # a fresh worker
    assert engine.run(deployment.pk, owner="next-worker") == ends
    row.refresh_from_db()
    if ends == S.SUCCEEDED:
        assert row.state == StepState.SUCCEEDED and row.worker == "next-worker"
    else:
        assert row.state == StepState.INTERRUPTED and "not repeated" in row.output
        assert app_version(plant, site_a, "DEV") == "2.3.1"


def die_after_running(monkeypatch, step_name: str) -> None:
    """The next worker to reach the rollback step `step_name` runs its effect on the plant, then dies
    before its journal row is closed (a SIGKILL, or PostgreSQL gone at that moment)."""
    original = engine._Runner.adapter_step

    def adapter_step(runner, phase, name, key, **options):
        if name != step_name:
            return original(runner, phase, name, key, **options)
        monkeypatch.setattr(engine._Runner, "adapter_step", original)  # only the first time
        DeploymentStep.objects.create(
            deployment=runner.deployment,
            order=100 + engine.ROLLBACK.index(name),
            phase=phase,
            name=name,
            started_at=datetime.now(UTC),
            worker=runner.owner,
        )
        specs = runner.pipeline[key] if isinstance(runner.pipeline[key], list) else [runner.pipeline[key]]
        only = options.get("only")
        for spec in specs:
            if only is None or only(spec):
                adapters.build(spec, restore=options.get("restore", False)).run(runner.context())
        raise engine.LeaseLost  # the worker is gone; its journal row still says "running"

    monkeypatch.setattr(engine._Runner, "adapter_step", adapter_step)


def test_an_interrupted_equipment_revert_is_not_pushed_twice(cast, site_a, plant, artifacts, monkeypatch):
    """A rollback step that changes the plant is not repeated either (FAULTS 22): the line's recipe may
    or may not be back, so the rollback ends failed and a person checks it — never a second push."""
    release = artifact_release(cast["dev"], artifacts["bad"], "2.4.2")
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, "DEV"))
    die_after_running(monkeypatch, "revert_equipment")
    assert engine.run(deployment.pk, owner="dying-worker") == "lease lost"
    assert engine.run(deployment.pk, owner="next-worker") == S.ROLLBACK_FAILED
    deployment.refresh_from_db()
    revert = deployment.steps.get(phase="rollback", name="revert_equipment")
    assert revert.state == StepState.INTERRUPTED and "not repeated" in revert.output
    reverts = [line for line in ledger.read(plant / site_a.code / "DEV") if line["action"] == "revert"]
    assert len(reverts) == 1 and reverts[0]["deployment"] == str(deployment.pk)
    # The rest of the rollback still ran: the application and the database are back.
    journal = steps(deployment)
    assert journal["rollback:restore_snapshot"] == journal["rollback:undo"] == "succeeded"
    assert app_version(plant, site_a, "DEV") == "2.3.1" and "label_layouts" not in tables(
        plant, site_a, "DEV"
    )
    assert "revert_equipment" in deployment.outcome  # the manual-recovery instructions name it
    # Resumed once more, it does not push either.
    assert engine.run(deployment.pk, owner="third-worker") == S.ROLLBACK_FAILED
    assert sum(line["action"] == "revert" for line in ledger.read(plant / site_a.code / "DEV")) == 1


def test_an_interrupted_undo_script_is_not_run_twice_the_backup_is_restored(
    cast, site_a, plant, artifacts, monkeypatch
):
    """The undo script may have committed before its worker died: running it again could undo twice.
    It counts as a failed undo: the backup is restored instead, and verified."""
    release = artifact_release(cast["dev"], artifacts["bad"], "2.4.2")
    rfc = major_rfc(cast, site_a, release)
    deployment = scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, "DEV"))
    die_after_running(monkeypatch, "undo")
    assert engine.run(deployment.pk, owner="dying-worker") == "lease lost"
    assert engine.run(deployment.pk, owner="next-worker") == S.ROLLED_BACK
    deployment.refresh_from_db()
    journal = steps(deployment)
    assert journal["rollback:undo"] == StepState.INTERRUPTED
    assert "rollback:verify_undo" not in journal
    assert journal["rollback:restore_backup"] == journal["rollback:verify_rollback"] == "succeeded"
    assert deployment.rpo["how"] == "backup restore"
    assert app_version(plant, site_a, "DEV") == "2.3.1" and "label_layouts" not in tables(
        plant, site_a, "DEV"
    )


def test_manual_rollback_by_a_release_manager(cast, site_a, plant, artifacts):
    dev = env_of(site_a, "DEV")
    dev.pipeline = {**dev.pipeline, "smoke_delay_seconds": 900}
    dev.save(update_fields=["pipeline"])
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    deployment = scheduling.deploy_now(cast["dev"], major_rfc(cast, site_a, release), dev)
    engine.run(deployment.pk, owner="w")
    assert app_version(plant, site_a, "DEV") == "2.4.1"
    with pytest.raises(Exception, match="release manager"):
        scheduling.request_rollback(cast["dev"], deployment, "looks odd")
    scheduling.request_rollback(cast["releasemgr"], deployment, "Operators report misprints")
    assert engine.run(deployment.pk, owner="w") == S.ROLLED_BACK
    assert app_version(plant, site_a, "DEV") == "2.3.1"
    assert AuditEvent.objects.filter(action="releases.deployment.rollback_requested").exists()


# --- PROD: the gates and the window again, and the RFC following its deployment ----------------------
def scheduled_prod(people, site, release, start):
    """A major RFC through its whole chain, booked into PROD at `start`."""
    with time_machine.travel(start - timedelta(days=1), tick=False):
        rfc = factories.sign_chain(
            people,
            factories.ready_rfc(
                people["dev"],
                people["tester"],
                site,
                release=release,
                estimated_downtime_minutes=10,
                retraining_note="Briefed.",
            ),
        )
        prove_in_uat(people, rfc, site)
        deployment = wf.schedule(people["releasemgr"], rfc, site, start, 30)
    return rfc, deployment


def prove_in_uat(people, rfc, site):
    """The computed-evidence gates from real runs: UAT refreshed from PROD, the SQL idempotent, the rollback rehearsed."""
    from deployments import checks
    from plant import evidence

    evidence.run_refresh(evidence.request_refresh(people["releasemgr"], env_of(site, "UAT")).pk)
    for kind in ("idempotency", "rehearsal"):
        assert checks.run_check(checks.request_check(people["dev"], rfc, kind, site).pk) == "passed"


TUESDAY_9 = datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN)


def test_prod_deployment_writes_equipment_and_the_rfc_follows(people, site_a, plant, artifacts):
    release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
    rfc, deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
    with time_machine.travel(TUESDAY_9 + timedelta(seconds=5), tick=True):
        assert deployment.pk in engine.dispatch()
        assert engine.run(deployment.pk, owner="w") == S.SUCCEEDED
    deployment.refresh_from_db()
    assert deployment.steps.get(name="equipment").state == StepState.SUCCEEDED
    assert (plant / site_a.code / "PROD" / "equipment.log").read_text().count("label-layout") == 1
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.DEPLOYED
    assert env_of(site_a, "PROD").active_version == "2.4.1"
    assert deployment.window_ends_at == datetime(2026, 12, 1, 11, 0, tzinfo=BERLIN)


def test_a_passed_window_means_missed_and_nothing_touched(people, site_a, plant, artifacts):
    release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
    rfc, deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
    with time_machine.travel(
        TUESDAY_9 + timedelta(hours=1, minutes=45), tick=False
    ):  # 10:45: 30 min no longer fit
        assert engine.run(deployment.pk, owner="w") == S.MISSED
    deployment.refresh_from_db()
    assert not deployment.steps.exists() and "nothing was touched" in deployment.outcome
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED  # to be booked again
    assert app_version(plant, site_a, "PROD") == "2.3.1"


def test_the_gates_are_asked_again_before_touching_prod(people, site_a, plant, artifacts):
    release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
    rfc, deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
    Signature.objects.filter(rfc=rfc).update(voided_at=TUESDAY_9, void_reason="test: content changed")
    with time_machine.travel(TUESDAY_9 + timedelta(seconds=5), tick=False):
        assert engine.run(deployment.pk, owner="w") == S.FAILED
    deployment.refresh_from_db()
    assert "Refused before touching PROD: Approvals complete" in deployment.outcome
    assert not deployment.steps.exists() and Rfc.objects.get(pk=rfc.pk).state == RfcState.FAILED


def test_when_the_window_closes_no_apply_starts_and_the_policy_rolls_back(people, site_a, plant, artifacts):
    release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
    rfc, deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
    original = engine._Runner.do_backup

    def slow_backup(runner):  # the backup runs until after the window closed
        result = original(runner)
        Deployment.objects.filter(pk=runner.deployment.pk).update(window_ends_at=TUESDAY_9)
        runner.deployment.window_ends_at = TUESDAY_9
        return result

    engine._Runner.do_backup = slow_backup
    try:
        with time_machine.travel(TUESDAY_9 + timedelta(seconds=5), tick=True):
            assert engine.run(deployment.pk, owner="w") == S.FAILED
    finally:
        engine._Runner.do_backup = original
    deployment.refresh_from_db()
    assert "window closed before the apply step" in deployment.outcome
    assert "forward:apply" not in steps(deployment) and Rfc.objects.get(pk=rfc.pk).state == RfcState.FAILED
    assert AuditEvent.objects.filter(action="releases.deployment.failed", object_id=rfc.number).exists()


def test_passed_in_dev_failed_in_uat_rejects_the_rfc_pointing_at_the_drift(cast, site_a, plant, artifacts):
    """E8: the same artifact succeeded in DEV and failed in UAT: the RFC is rejected, the note names the drift."""
    import sys

    uat = env_of(site_a, "UAT")
    uat.pipeline = {
        **uat.pipeline,
        "apply": [
            *uat.pipeline["apply"],
            {
                "adapter": "command",
                "command": [sys.executable, "-c", "import sys; sys.exit('libzpl.so.2 missing on UAT')"],
            },
        ],
    }
    uat.save(update_fields=["pipeline"])
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    rfc = major_rfc(cast, site_a, release)
    for tier in ("DEV", "UAT"):
        engine.run(scheduling.deploy_now(cast["dev"], rfc, env_of(site_a, tier)).pk, owner="w")
    rfc.refresh_from_db()
    assert rfc.state == RfcState.REJECTED
    event = AuditEvent.objects.get(action="releases.rfc.finally_rejected", object_id=rfc.number)
    assert event.reason.startswith("Succeeded in DEV, failed in UAT")
    assert "Drift between DEV and UAT: MES: DEV 2.4.1, UAT 1.0.0" in event.reason


def test_the_fingerprint_after_a_deployment_shows_what_now_runs(cast, site_a, plant, artifacts):
    """E8: the fingerprint taken after the deployment is of the environment as it now runs, so the
    drift view shows no false difference in the version."""
    from plant.evidence import drift

    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.SUCCEEDED, deployment.outcome
    dev = env_of(site_a, "DEV")
    dev.refresh_from_db()
    assert dev.active_version == "2.4.1" and dev.fingerprint["versions"] == {"MES": "2.4.1"}
    twin = env_of(site_a, "UAT")
    twin.fingerprint = {**dev.fingerprint}
    assert drift(dev, twin) == []


def test_a_late_duplicate_delivery_for_a_finished_deployment_takes_no_lease(cast, site_a, plant, artifacts):
    """X7 / CELERY.md: a task delivered twice finds the deployment finished: it answers the outcome,
    takes no lease and counts no attempt."""
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.SUCCEEDED
    attempts = deployment.attempts
    assert engine.run(deployment.pk, owner="late-worker") == S.SUCCEEDED
    deployment.refresh_from_db()
    assert deployment.attempts == attempts and deployment.lease_owner != "late-worker"
