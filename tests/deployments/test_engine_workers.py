"""The engine in real Celery workers: through the broker the settings name (a file
system here, Redis in CI), surviving SIGKILL mid-apply, two dispatchers and a wiped broker."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from audit.models import AuditEvent
from core import clock
from deployments import engine
from deployments.models import Deployment, DeploymentState, StepState
from environments.models import Environment, Tier
from releases import services
from tests import factories
from tests.workers import celery_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
S = DeploymentState


@pytest.fixture
def quick(settings):
    settings.DEPLOYMENT_REDISPATCH_SECONDS = 1


def release(user, version="1.0.1"):
    return services.create_release(
        user,
        product="MES",
        version=version,
        artifact=SimpleUploadedFile(
            f"mes-{version}.json", f'{{"product": "MES", "version": "{version}"}}'.encode()
        ),
    )


def deployments(cast, site, count: int, pipeline: dict) -> list[Deployment]:
    env = Environment.objects.get(site=site, tier=Tier.DEV)
    env.pipeline = pipeline
    env.save(update_fields=["pipeline"])
    rel = release(cast["dev"])
    now = clock.now()
    return [  # one RFC each: one site's deployments of an RFC never overlap (X5)
        Deployment.objects.create(
            rfc=factories.rfc(cast["dev"], site, release=rel),
            environment=env,
            scheduled_start=now,
            scheduled_end=now + timedelta(minutes=30),
            duration_minutes=1,
            scheduled_by=cast["dev"],
        )
        for _ in range(count)
    ]


def dispatch_until(predicate, timeout=60):
    """Beat's job, done by the test: dispatch until the other processes produced the outcome."""

    def step():
        engine.dispatch()
        return predicate()

    return wait_until(step, timeout=timeout, interval=0.3)


def all_done(ids):
    return lambda: Deployment.objects.filter(pk__in=ids, state__in=engine.TERMINAL).count() == len(ids)


def test_a_worker_runs_dispatched_deployments(cast, site_a, quick):
    items = deployments(cast, site_a, 3, {"smoke_delay_seconds": 0})
    with celery_worker("engine") as worker:
        try:
            dispatch_until(all_done([d.pk for d in items]))
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(worker.log[-40:])) from None
    for item in items:
        item.refresh_from_db()
        assert item.state == S.SUCCEEDED, item.outcome
        assert item.steps.get(name="verify_checksum").state == StepState.SUCCEEDED
    # Each started once, however often a (re)dispatched task was delivered.
    assert AuditEvent.objects.filter(action="releases.deployment.started").count() == len(items)
    assert any("deployments.tasks.run_deployment" in line for line in worker.log)


def test_sigkill_mid_apply_is_rolled_back_and_apply_never_runs_twice(cast, site_a, quick, tmp_path):
    marker = tmp_path / "apply.log"
    app = tmp_path / "app"
    app.mkdir()
    (app / "version.txt").write_text("1.0.0")
    script = (
        "import os, sys, time, pathlib; m = pathlib.Path(sys.argv[1]); "
        "m.open('a').write(f'started {os.getpid()}\\n'); "
        "pathlib.Path(sys.argv[2], 'version.txt').write_text('half-applied'); time.sleep(120)"
    )
    pipeline = {
        "smoke_delay_seconds": 0,
        "snapshot": {"adapter": "directory", "path": str(app)},
        "apply": {
            "adapter": "command",
            "command": [sys.executable, "-c", script, str(marker), str(app)],
            "timeout": 300,
        },
    }
    [item] = deployments(cast, site_a, 1, pipeline)
    lease = {"DEPLOYMENT_LEASE_SECONDS": "5"}
    with celery_worker("doomed", extra_env=lease) as doomed:
        try:
            dispatch_until(lambda: marker.exists() and "started" in marker.read_text())
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(doomed.log[-40:])) from None
        os.kill(doomed.pid, signal.SIGKILL)  # mid-apply: no warm shutdown, no cleanup
        os.kill(int(marker.read_text().split()[1]), signal.SIGKILL)  # and the half-done installer with it
        doomed.wait(timeout=10)
    assert Deployment.objects.get(pk=item.pk).state == S.RUNNING
    with celery_worker("heir", extra_env=lease) as heir:
        try:
            dispatch_until(all_done([item.pk]), timeout=60)
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(heir.log[-40:])) from None
    item.refresh_from_db()
    assert item.state == S.ROLLED_BACK, item.outcome
    # The heir took the lease after the doomed worker (a loaded machine may let the heir's own lease
    # lapse between steps and take it again); what matters is below: the apply never ran twice.
    assert item.attempts >= 2
    apply = item.steps.get(name="apply")
    assert apply.state == StepState.INTERRUPTED
    assert marker.read_text().count("started") == 1  # never applied twice
    assert (app / "version.txt").read_text() == "1.0.0"  # the snapshot is back


@pytest.mark.postgres
def test_two_dispatchers_hand_out_each_deployment_once(cast, site_a, quick):
    items = deployments(cast, site_a, 12, {"smoke_delay_seconds": 0})
    barrier, claimed = threading.Barrier(2), []

    def beat():
        try:
            barrier.wait()
            claimed.append(engine.dispatch())
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = claimed
    assert not set(first) & set(second) and sorted(first + second) == sorted(d.pk for d in items)
    with celery_worker("engine"):
        dispatch_until(all_done([d.pk for d in items]))
    assert set(Deployment.objects.filter(pk__in=[d.pk for d in items]).values_list("state", flat=True)) == {
        S.SUCCEEDED
    }
    # One start per deployment (each of its own RFC), however often a task was delivered.
    started = AuditEvent.objects.filter(
        action="releases.deployment.started", object_id__in=[d.rfc.number for d in items]
    )
    assert sorted(started.values_list("object_id", flat=True)) == sorted(d.rfc.number for d in items)


def wipe_broker() -> None:
    """Lose every queued message: FLUSHDB on Redis, the queue folder on the file-system broker."""
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    else:
        folder = Path(settings.BROKER_DIR) / "queue"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)


def test_a_wiped_broker_loses_nothing(cast, site_a, quick):
    items = deployments(cast, site_a, 2, {"smoke_delay_seconds": 0})
    assert sorted(engine.dispatch()) == sorted(d.pk for d in items)  # queued for a worker…
    wipe_broker()  # …and gone with the broker's data
    with celery_worker("engine") as worker:
        try:
            dispatch_until(all_done([d.pk for d in items]))
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(worker.log[-40:])) from None
    assert set(Deployment.objects.filter(pk__in=[d.pk for d in items]).values_list("state", flat=True)) == {
        S.SUCCEEDED
    }


def test_every_outcome_through_a_real_worker(cast, site_a, site_b, quick, tmp_path):
    """Success, smoke failure → verified rollback, 25 % slower → rollback, snapshot failure → nothing
    applied, window passed → missed, DEV equipment → simulated: one worker, the real demo plant."""
    import json
    from datetime import datetime

    from demo_plant.artifacts import build
    from demo_plant.layout import ensure_environment
    from demo_plant.portal import pipeline
    from tests.demo_plant_server import running_plant

    root = tmp_path / "plant"
    built = build(tmp_path / "artifacts")
    for site in (site_a, site_b):
        for tier in ("DEV", "UAT"):
            ensure_environment(root, site.code, tier)
    slow_app = root / site_b.code / "DEV" / "app" / "release.json"
    slow_app.write_text(json.dumps({**json.loads(slow_app.read_text()), "label_delay_ms": 200}))

    def upload(version, content: bytes):
        return services.create_release(
            cast["dev"],
            product="MES",
            version=version,
            migration_sql="CREATE TABLE t (id INTEGER);",
            undo_sql="DROP TABLE t;",
            artifact=SimpleUploadedFile(f"mes-{version}.json", content),
        )

    good, bad = upload("1.0.1", built["good"].read_bytes()), upload("1.0.2", built["bad"].read_bytes())
    slower = upload(
        "1.0.3", b'{"product": "MES", "version": "1.0.3", "label_delay_ms": 250, "broken": false}'
    )
    with running_plant(root) as base:
        cases = {}
        for name, site, tier, release in (
            ("good", site_a, "DEV", good),
            ("bad", site_a, "UAT", bad),
            ("slow", site_b, "DEV", slower),
            ("snapshot", site_b, "UAT", good),
        ):
            env = Environment.objects.get(site=site, tier=tier)
            env.pipeline = pipeline(root, site.code, tier, base, smoke_delay_seconds=1)
            if name == "snapshot":
                env.pipeline["snapshot"] = {"adapter": "directory", "path": str(tmp_path / "missing")}
            env.save(update_fields=["pipeline"])
            rfc = factories.rfc(cast["dev"], site, release=release)
            if tier == "UAT":
                factories.promote(rfc, site, tiers=("DEV",))  # X5: DEV first
            now = clock.now()
            cases[name] = Deployment.objects.create(
                rfc=rfc,
                environment=env,
                scheduled_start=now,
                scheduled_end=now + timedelta(hours=1),
                duration_minutes=5,
                scheduled_by=cast["dev"],
            )
        prod = Environment.objects.get(site=site_a, tier=Tier.PROD)  # enforces the calendar
        past = datetime(2026, 11, 10, 8, 0, tzinfo=clock.now().tzinfo)  # Tue 09:00 Berlin, long gone
        cases["missed"] = Deployment.objects.create(
            rfc=factories.rfc(cast["dev"], site_a, release=good),
            environment=prod,
            scheduled_start=past,
            scheduled_end=past + timedelta(hours=1),
            duration_minutes=30,
            scheduled_by=cast["dev"],
        )
        with celery_worker("outcomes") as worker:
            try:
                dispatch_until(all_done([d.pk for d in cases.values()]), timeout=90)
            except AssertionError:
                raise AssertionError("worker log:\n" + "".join(worker.log[-60:])) from None
    states = {name: Deployment.objects.get(pk=d.pk) for name, d in cases.items()}
    assert {name: d.state for name, d in states.items()} == {
        "good": S.SUCCEEDED,
        "bad": S.ROLLED_BACK,
        "slow": S.ROLLED_BACK,
        "snapshot": S.FAILED,
        "missed": S.MISSED,
    }
    assert states["good"].steps.get(name="equipment").state == StepState.SIMULATED
    assert states["bad"].steps.get(name="verify_undo").state == StepState.SUCCEEDED  # R3: undone, data kept
    assert states["slow"].steps.get(name="compare").result["change_percent"] > 20
    assert not states["snapshot"].steps.filter(name="apply").exists()
    assert not states["missed"].steps.exists()
    assert json.loads((root / site_a.code / "UAT" / "app" / "release.json").read_text())["version"] == "2.3.1"
