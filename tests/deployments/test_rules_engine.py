"""The deployment engine's safety guards (PRODUCT.md W5, X1–X4): the lease that keeps one worker per
deployment, the window that must still hold the deployment, the journal that never repeats a step
that may have half-run, and the performance rule's boundary. Steps here are run by the engine itself,
with small stand-in actions instead of a plant (tests/test_engine.py drives the real demo plant)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditEvent
from deployments import engine
from deployments.models import Deployment, DeploymentState, DeploymentStep, StepState
from environments.models import Environment
from plant import adapters
from tests import factories


@pytest.fixture(autouse=True)
def production_noise(settings):
    """The comparison's rules at the production default of 15 ms noise (the suite's default is wider)."""
    settings.SMOKE_NOISE_MS = 15


pytestmark = pytest.mark.django_db
S = DeploymentState
TUESDAY_9_BERLIN = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)  # 09:00 in Berlin, a window opens
LEASE = timedelta(seconds=120)


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"
    settings.DEPLOYMENT_LEASE_SECONDS = 120
    settings.DEPLOYMENT_REDISPATCH_SECONDS = 60


@pytest.fixture
def clock():
    with time_machine.travel(TUESDAY_9_BERLIN, tick=False) as traveller:
        yield traveller


VERSIONS = itertools.count(1)


def deployment(cast, site, tier="DEV", start=None, duration=30, promoted=True, **fields) -> Deployment:
    """A booked deployment of a new RFC's artifact to `tier`; `promoted`: it succeeded in the tiers below."""
    rfc = factories.rfc(cast["dev"], site, version=f"1.0.{next(VERSIONS)}")
    if promoted:
        factories.promote(rfc, site, tiers={"DEV": (), "UAT": ("DEV",), "PROD": ("DEV", "UAT")}[tier])
    start = start or TUESDAY_9_BERLIN
    return Deployment.objects.create(
        rfc=rfc,
        environment=Environment.objects.get(site=site, tier=tier),
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=duration + 30),
        duration_minutes=duration,
        scheduled_by=cast["releasemgr"],
        artifact_sha256=rfc.release.artifact_sha256,
        **fields,
    )


@pytest.mark.parametrize("tier, below", [("UAT", "DEV"), ("PROD", "UAT")])
def test_the_worker_refuses_a_tier_the_artifact_has_not_earned(cast, site_a, clock, tier, below):
    """X5, E1: right before it touches an environment the worker asks the promotion rule again; a booking
    that skipped a tier ends failed, nothing touched, naming the tier the artifact must succeed in."""
    d = deployment(cast, site_a, tier=tier, promoted=False)
    assert engine.run(d.pk, owner="worker-1") == S.FAILED
    d.refresh_from_db()
    assert d.outcome.startswith(f"Refused before touching PLA {tier}: ")
    assert f"has not succeeded in PLA {below} yet" in d.outcome
    assert not DeploymentStep.objects.filter(deployment=d).exists()


def test_the_worker_refuses_an_artifact_changed_since_booking(cast, site_a, clock):
    """X5: the deployment carries the artifact it was booked with; a release whose artifact was replaced
    afterwards is not deployed under the old booking."""
    d = deployment(cast, site_a, tier="DEV")
    Deployment.objects.filter(pk=d.pk).update(artifact_sha256="0" * 64)
    assert engine.run(d.pk, owner="worker-1") == S.FAILED
    d.refresh_from_db()
    assert "artifact changed since this deployment was booked" in d.outcome
    assert not DeploymentStep.objects.filter(deployment=d).exists()


def test_a_two_tier_site_promotes_dev_straight_to_prod(cast, clock):
    """E1, seed 000: a site with only DEV and PROD takes into PROD what succeeded in DEV."""
    from tests.conftest import make_site

    two = make_site("TWO", tiers=("DEV", "PROD"))
    d = deployment(cast, two, tier="PROD", promoted=False)
    from deployments import promotion

    prod = d.environment
    assert promotion.previous(prod).tier == "DEV" and promotion.proving(two.pk).tier == "DEV"
    assert "has not succeeded in TWO DEV yet" in promotion.order_refusal(d.rfc.release, prod)
    factories.promote(d.rfc, two, tiers=("DEV",))
    assert promotion.order_refusal(d.rfc.release, prod) is None


def runner(d: Deployment, owner="worker-1") -> engine._Runner:
    assert engine.acquire(d.pk, owner)
    return engine._Runner(d.pk, owner)


# --- The lease (X4: one worker per deployment) -------------------------------------------------------
def test_the_lease_keeps_a_second_worker_out_until_it_expires(cast, site_a, clock):
    """X4: a duplicate delivery finds the lease and does nothing until the lease has run out."""
    d = deployment(cast, site_a)
    assert engine.acquire(d.pk, "worker-1") is True
    d.refresh_from_db()
    assert (d.lease_owner, d.lease_expires_at, d.attempts) == ("worker-1", TUESDAY_9_BERLIN + LEASE, 1)
    assert engine.acquire(d.pk, "worker-2") is False
    clock.move_to(TUESDAY_9_BERLIN + LEASE)  # expiring now is not expired yet
    assert engine.acquire(d.pk, "worker-2") is False
    assert engine.acquire(d.pk, "worker-1") is True  # its own lease: taken again, counted
    d.refresh_from_db()
    assert (d.lease_expires_at, d.attempts) == (TUESDAY_9_BERLIN + 2 * LEASE, 2)
    clock.move_to(TUESDAY_9_BERLIN + 2 * LEASE + timedelta(microseconds=1))
    assert engine.acquire(d.pk, "worker-2") is True
    d.refresh_from_db()
    assert (d.lease_owner, d.attempts) == ("worker-2", 3)


def test_only_the_owner_renews_or_releases_the_lease(cast, site_a, clock):
    """X4: another worker can neither extend nor drop a lease it does not hold."""
    d = deployment(cast, site_a, dispatched_at=TUESDAY_9_BERLIN)
    engine.acquire(d.pk, "worker-1")
    clock.move_to(TUESDAY_9_BERLIN + timedelta(seconds=30))
    assert engine.renew(d.pk, "worker-2") is False
    engine.release(d.pk, "worker-2")
    d.refresh_from_db()
    assert (d.lease_owner, d.lease_expires_at) == ("worker-1", TUESDAY_9_BERLIN + LEASE)
    assert engine.renew(d.pk, "worker-1") is True
    d.refresh_from_db()
    assert d.lease_expires_at == TUESDAY_9_BERLIN + timedelta(seconds=30) + LEASE
    engine.release(d.pk, "worker-1")
    d.refresh_from_db()
    assert (d.lease_owner, d.lease_expires_at, d.dispatched_at) == ("", None, None)


def test_renewing_one_lease_leaves_the_workers_other_leases_alone(cast, site_a, clock):
    """X4: a worker's heartbeat extends the lease of the deployment it runs, not every lease it holds."""
    first, second = deployment(cast, site_a), deployment(cast, site_a)
    engine.acquire(first.pk, "worker-1")
    engine.acquire(second.pk, "worker-1")
    clock.move_to(TUESDAY_9_BERLIN + timedelta(seconds=30))
    assert engine.renew(first.pk, "worker-1") is True
    second.refresh_from_db()
    assert second.lease_expires_at == TUESDAY_9_BERLIN + LEASE


def test_releasing_one_lease_leaves_the_workers_other_leases_alone(cast, site_a, clock):
    """X4: a worker lets go of the deployment it finished, not of the others it holds."""
    first, second = deployment(cast, site_a), deployment(cast, site_a)
    engine.acquire(first.pk, "worker-1")
    engine.acquire(second.pk, "worker-1")
    engine.release(first.pk, "worker-1")
    second.refresh_from_db()
    assert second.lease_owner == "worker-1"


def test_a_worker_without_a_name_runs_under_its_host_process_and_thread(cast, site_a, clock):
    """X4: the journal names the worker that ran each step (host:pid:thread)."""
    d = deployment(cast, site_a)
    engine.run(d.pk)
    assert {s.worker for s in DeploymentStep.objects.filter(deployment=d)} == {engine.worker_id()}


def test_run_leaves_a_leased_deployment_alone(cast, site_a, clock):
    """X4: the second worker touches nothing and does not free the first one's lease."""
    d = deployment(cast, site_a)
    engine.acquire(d.pk, "worker-1")
    assert engine.run(d.pk, owner="worker-2") == "leased by another worker"
    d.refresh_from_db()
    assert (d.state, d.lease_owner, d.attempts) == (S.SCHEDULED, "worker-1", 1)
    assert not DeploymentStep.objects.exists()


def test_a_worker_that_lost_its_lease_stops(cast, site_a, clock, monkeypatch):
    """X4: a worker whose lease was taken over stops at its next look at the row, and lets go of nothing."""
    d = deployment(cast, site_a, lease_owner="worker-2", lease_expires_at=TUESDAY_9_BERLIN + LEASE)
    monkeypatch.setattr(engine, "acquire", lambda pk, owner: True)
    assert engine.run(d.pk, owner="worker-1") == "lease lost"
    d.refresh_from_db()
    assert (d.state, d.lease_owner) == (S.SCHEDULED, "worker-2")
    with pytest.raises(engine.LeaseLost):
        engine._Runner(d.pk, "worker-1").refresh()


def test_run_releases_the_lease_when_it_stops(cast, site_a, clock):
    """X2: after a pass the row is free again, so the smoke test's due time can be dispatched."""
    d = deployment(cast, site_a)
    assert engine.run(d.pk, owner="worker-1") == "waiting for the smoke test"
    d.refresh_from_db()
    assert (d.state, d.lease_owner, d.lease_expires_at) == (S.VERIFYING, "", None)
    assert d.next_action_at == TUESDAY_9_BERLIN + timedelta(minutes=15)


def test_due_rows_are_scheduled_or_active_unleased_and_not_just_sent(cast, site_a, clock):
    """X2, X4: what the dispatcher claims: due now, nobody's lease, not sent in the last minute."""
    now = TUESDAY_9_BERLIN
    due = deployment(cast, site_a, start=now)
    later = deployment(cast, site_a, start=now + timedelta(seconds=1))
    leased = deployment(cast, site_a, start=now, lease_owner="w", lease_expires_at=now)
    lapsed = deployment(cast, site_a, start=now, lease_owner="w", lease_expires_at=now - timedelta(seconds=1))
    sent = deployment(cast, site_a, start=now, dispatched_at=now - timedelta(seconds=60))
    resent = deployment(cast, site_a, start=now, dispatched_at=now - timedelta(seconds=61))
    verifying = deployment(cast, site_a, state=S.VERIFYING, next_action_at=now)
    waiting = deployment(cast, site_a, state=S.VERIFYING, next_action_at=now + timedelta(seconds=1))
    finished = deployment(cast, site_a, state=S.SUCCEEDED, next_action_at=now)
    found = set(engine.due_queryset(now).values_list("pk", flat=True))
    assert found == {due.pk, lapsed.pk, resent.pk, verifying.pk}
    assert not {later.pk, leased.pk, sent.pk, waiting.pk, finished.pk} & found


# --- The window (W5) ---------------------------------------------------------------------------------
def _enforce(site, tier="UAT") -> None:
    Environment.objects.filter(site=site, tier=tier).update(windows_enforced=True)


def test_a_deployment_that_still_fits_its_window_starts(cast, site_a, clock):
    """W5: 09:00–11:00 Berlin; 30 minutes starting at 10:30 still end inside the window."""
    _enforce(site_a)
    d = deployment(cast, site_a, tier="UAT")
    now = TUESDAY_9_BERLIN + timedelta(minutes=90)
    clock.move_to(now)
    engine.run(d.pk, owner="worker-1")
    d.refresh_from_db()
    assert d.state == S.VERIFYING
    assert (d.started_at, d.window_ends_at) == (now, TUESDAY_9_BERLIN + timedelta(hours=2))


def test_a_deployment_that_no_longer_fits_its_window_is_missed(cast, site_a, clock):
    """W5: one microsecond too late for the remaining window: missed, and nothing was touched."""
    _enforce(site_a)
    d = deployment(cast, site_a, tier="UAT")
    now = TUESDAY_9_BERLIN + timedelta(minutes=90, microseconds=1)
    clock.move_to(now)
    assert engine.run(d.pk, owner="worker-1") == S.MISSED
    d.refresh_from_db()
    assert d.state == S.MISSED and d.finished_at == now
    assert d.outcome == (
        f"Its window closed at {(TUESDAY_9_BERLIN + timedelta(hours=2)).isoformat()} "
        "before it could start; nothing was touched."
    )
    assert not DeploymentStep.objects.filter(deployment=d).exists()
    assert AuditEvent.objects.filter(action="releases.deployment.missed").exists()


def test_a_start_the_calendar_no_longer_allows_has_no_time_left(cast, site_a, clock):
    """W5: the calendar changed under a booking (a Monday has no window): no window left at all."""
    _enforce(site_a)
    monday = TUESDAY_9_BERLIN - timedelta(days=1)
    d = deployment(cast, site_a, tier="UAT", start=monday)
    clock.move_to(monday - timedelta(minutes=29))
    assert engine.run(d.pk, owner="worker-1") == S.MISSED
    d.refresh_from_db()
    assert d.outcome.startswith(f"Its window closed at {monday.isoformat()} ")


def test_without_a_calendar_there_is_no_window_end(cast, site_a, clock):
    """W1: DEV takes deployments at any time; its deployment has no window end."""
    d = deployment(cast, site_a, start=TUESDAY_9_BERLIN - timedelta(days=1))
    clock.move_to(TUESDAY_9_BERLIN + timedelta(hours=12))
    engine.run(d.pk, owner="worker-1")
    d.refresh_from_db()
    assert (d.state, d.window_ends_at) == (S.VERIFYING, None)


@pytest.mark.parametrize("name", ["apply", "equipment"])
def test_no_apply_or_equipment_step_starts_once_the_window_has_closed(cast, site_a, clock, name):
    """W5: at the window's end no step that changes the plant starts; a step already done stands."""
    end = TUESDAY_9_BERLIN + timedelta(hours=2)
    d = deployment(cast, site_a, state=S.RUNNING, window_ends_at=end)
    r = runner(d)
    refuse = f"The window closed before the {name} step could start."
    clock.move_to(end - timedelta(microseconds=1))
    assert r.window_closed() is False
    clock.move_to(end)
    assert r.window_closed() is True
    assert getattr(r, f"do_{name}")() == refuse
    assert not DeploymentStep.objects.filter(deployment=d, name=name).exists()
    DeploymentStep.objects.create(
        deployment=d,
        order=5,
        phase="forward",
        name=name,
        state=StepState.SUCCEEDED,
        worker="worker-0",
        started_at=TUESDAY_9_BERLIN,
    )
    assert getattr(r, f"do_{name}")() is True


@pytest.mark.parametrize("done", ["nothing", "other_deployment", "other_step", "unfinished"])
def test_only_this_deployments_finished_apply_lets_it_go_on_after_the_window(cast, site_a, clock, done):
    """W5: past the window's end only an apply step this deployment already finished stands."""
    end = TUESDAY_9_BERLIN
    d = deployment(cast, site_a, state=S.RUNNING, window_ends_at=end)
    row = {"order": 5, "phase": "forward", "started_at": end, "state": StepState.SUCCEEDED}
    if done == "other_deployment":
        DeploymentStep.objects.create(deployment=deployment(cast, site_a), name="apply", **row)
    elif done == "other_step":
        DeploymentStep.objects.create(deployment=d, name="snapshot", **row)
    elif done == "unfinished":
        DeploymentStep.objects.create(deployment=d, name="apply", **{**row, "state": StepState.RUNNING})
    assert runner(d).do_apply() == "The window closed before the apply step could start."


def test_the_window_still_open_lets_the_apply_step_run(cast, site_a, clock):
    """W5: before the window's end the apply step runs (here: nothing configured, so it is skipped)."""
    d = deployment(cast, site_a, state=S.RUNNING, window_ends_at=TUESDAY_9_BERLIN + timedelta(hours=2))
    r = runner(d)
    clock.move_to(TUESDAY_9_BERLIN + timedelta(hours=2) - timedelta(microseconds=1))
    assert r.do_apply() is True
    assert DeploymentStep.objects.get(deployment=d, name="apply").state == StepState.SKIPPED


# --- The journal: interrupted steps (X4, DESIGN principle 2) ----------------------------------------
class Action:
    def __init__(self, result=None, error: Exception | None = None):
        self.calls, self.result, self.error = 0, result, error

    def __call__(self):
        self.calls += 1
        if self.error:
            raise self.error
        return self.result


@pytest.mark.parametrize("state", [StepState.RUNNING, StepState.INTERRUPTED])
@pytest.mark.parametrize("name", ["apply", "equipment"])
def test_a_half_run_step_that_changes_the_plant_is_never_repeated(cast, site_a, clock, name, state):
    """X4: a worker died inside apply or equipment: the step is not run again, the deployment rolls back.
    A row already marked interrupted (the rollback resumed once more) is said so only once."""
    said = "started\nThe worker running this step stopped; it is not repeated: rolling back."
    d = deployment(cast, site_a, state=S.RUNNING)
    row = DeploymentStep.objects.create(
        deployment=d,
        order=5,
        phase="forward",
        name=name,
        state=state,
        worker="dead",
        output="started" if state == StepState.RUNNING else said,
        started_at=TUESDAY_9_BERLIN - timedelta(minutes=5),
        finished_at=None if state == StepState.RUNNING else TUESDAY_9_BERLIN,
    )
    action = Action(adapters.StepResult(True, "applied"))
    result = runner(d).step("forward", name, action)
    assert action.calls == 0
    assert (result.ok, result.data) == (False, {"interrupted": True})
    assert result.output == said
    row.refresh_from_db()
    assert (row.state, row.finished_at, row.worker) == (StepState.INTERRUPTED, TUESDAY_9_BERLIN, "dead")
    assert row.output == said


def test_a_half_run_side_effect_free_step_is_run_again(cast, site_a, clock):
    """X4: a smoke test or a snapshot left running by a dead worker is simply run again."""
    d = deployment(cast, site_a, state=S.RUNNING)
    row = DeploymentStep.objects.create(
        deployment=d,
        order=1,
        phase="forward",
        name="baseline",
        state=StepState.RUNNING,
        worker="dead",
        started_at=TUESDAY_9_BERLIN - timedelta(minutes=5),
    )
    action = Action(adapters.StepResult(True, "200 OK", {"adapter": "http", "latency_ms": 12.0}))
    assert runner(d).step("forward", "baseline", action).ok is True
    assert action.calls == 1
    row.refresh_from_db()
    assert (row.state, row.worker, row.started_at, row.finished_at) == (
        StepState.SUCCEEDED,
        "worker-1",
        TUESDAY_9_BERLIN,
        TUESDAY_9_BERLIN,
    )
    assert (row.output, row.result, row.adapter) == (
        "200 OK",
        {"adapter": "http", "latency_ms": 12.0},
        "http",
    )


@pytest.mark.parametrize(
    ("state", "ok", "simulated"),
    [
        (StepState.SUCCEEDED, True, False),
        (StepState.SIMULATED, True, True),
        (StepState.SKIPPED, True, False),
        (StepState.FAILED, False, False),
    ],
)
def test_a_finished_step_is_answered_from_the_journal(cast, site_a, clock, state, ok, simulated):
    """X4: what a step did is the journal's; a finished step is never run again."""
    d = deployment(cast, site_a, state=S.RUNNING)
    DeploymentStep.objects.create(
        deployment=d,
        order=6,
        phase="forward",
        name="apply",
        state=state,
        output="done",
        result={"n": 1},
        started_at=TUESDAY_9_BERLIN,
    )
    action = Action(adapters.StepResult(True, "again"))
    result = runner(d).step("forward", "apply", action)
    assert action.calls == 0
    assert (result.ok, result.output, result.data, result.simulated) == (ok, "done", {"n": 1}, simulated)


def test_a_new_step_is_journaled_in_its_place_with_its_outcome(cast, site_a, clock, caplog):
    """X1, C1: each step's row: order, worker, times, adapter, output; rollback steps after forward ones."""
    d = deployment(cast, site_a, state=S.RUNNING)
    r = runner(d)
    r.step("forward", "snapshot", Action(adapters.StepResult(True, "copied", {"adapter": "directory"})))
    r.step("forward", "equipment", Action(adapters.StepResult(True, "sent", {"adapter": "command"}, True)))
    skipped = r.step("rollback", "restore_backup", Action(None))
    assert (skipped.ok, skipped.output) == (True, "not configured for this environment")
    misconfigured = r.step(
        "forward", "smoke", Action(error=adapters.AdapterError("the http adapter needs 'url'"))
    )
    assert misconfigured.ok is False
    with caplog.at_level("ERROR", logger="deployments.engine"):
        crashed = r.step("forward", "commit", Action(error=ValueError("boom")))
    assert crashed.ok is False
    assert [rec.getMessage() for rec in caplog.records] == [f"step commit of deployment {d.pk} crashed"]
    r.step("forward", "backup", Action(adapters.StepResult(True, "no adapter named")))
    rows = {s.name: s for s in DeploymentStep.objects.filter(deployment=d)}
    assert {n: (s.order, s.phase, s.state) for n, s in rows.items()} == {
        "snapshot": (3, "forward", StepState.SUCCEEDED),
        "equipment": (8, "forward", StepState.SIMULATED),
        "restore_backup": (106, "rollback", StepState.SKIPPED),
        "smoke": (10, "forward", StepState.FAILED),
        "commit": (13, "forward", StepState.FAILED),
        "backup": (4, "forward", StepState.SUCCEEDED),
    }
    assert rows["snapshot"].adapter == "directory" and rows["snapshot"].worker == "worker-1"
    assert rows["equipment"].output == "SIMULATED (this environment does not write to equipment, E5)\nsent"
    assert rows["restore_backup"].output == "not configured for this environment"
    assert rows["restore_backup"].result == {}
    assert rows["smoke"].output == "configuration error: the http adapter needs 'url'"
    assert rows["commit"].output == "ValueError: boom"
    assert all(s.started_at == s.finished_at == TUESDAY_9_BERLIN for s in rows.values())
    assert rows["backup"].adapter == ""


# --- The performance rule (X3) ------------------------------------------------------------------------
def compare(cast, site, before_ms, after_ms):
    d = deployment(cast, site, state=S.RUNNING)
    for order, name, latency in ((1, "baseline", before_ms), (8, "smoke", after_ms)):
        DeploymentStep.objects.create(
            deployment=d,
            order=order,
            phase="forward",
            name=name,
            state=StepState.SUCCEEDED,
            result={} if latency is None else {"latency_ms": latency},
            started_at=TUESDAY_9_BERLIN,
        )
    outcome = runner(d).do_compare()
    return outcome, DeploymentStep.objects.get(deployment=d, name="compare")


@pytest.mark.parametrize(
    ("before_ms", "after_ms", "passes"),
    [
        (100.0, 120.0, True),  # exactly 20 % slower: still fine
        (100.0, 120.01, False),  # more than 20 %: roll back
        (100.0, 80.0, True),
        (20.0, 35.0, True),  # a 20 ms call may take 15 ms more (noise)
        (20.0, 35.01, False),
        (200.0, 215.0, True),
        (200.0, 240.01, False),
    ],
)
def test_more_than_20_percent_slower_rolls_back(cast, site_a, clock, before_ms, after_ms, passes):
    """X3: performance more than 20 % worse than before (and beyond measurement noise) fails the change."""
    outcome, row = compare(cast, site_a, before_ms, after_ms)
    assert outcome == (True if passes else "Performance is more than 20 % worse than before the change.")
    assert row.state == (StepState.SUCCEEDED if passes else StepState.FAILED)
    assert row.result["before_ms"] == before_ms and row.result["after_ms"] == after_ms
    assert row.result["change_percent"] == round((after_ms - before_ms) / before_ms * 100, 1)


def test_the_comparison_reads_as_a_person_would_write_it(cast, site_a, clock):
    """X3, C2: the journal says what was measured and where the limit was."""
    _, row = compare(cast, site_a, 100.0, 125.0)
    assert (
        row.output
        == "latency 125.0 ms after vs 100.0 ms before (+25 %); limit 120.0 ms (+20%, at least +15 ms)"
    )
    assert row.adapter == "compare"


def test_without_both_measurements_there_is_nothing_to_compare(cast, site_a, clock):
    """X3: no latency measured before or after: the comparison is skipped, not failed."""
    outcome, row = compare(cast, site_a, None, 500.0)
    assert outcome is True and row.state == StepState.SKIPPED
    outcome, row = compare(cast, site_a, 100.0, None)
    assert outcome is True and row.state == StepState.SKIPPED


def test_a_zero_baseline_has_no_percentage(cast, site_a, clock):
    """X3: a baseline of 0 ms still compares (15 ms noise), and reports no change percentage."""
    outcome, row = compare(cast, site_a, 0.0, 15.0)
    assert outcome is True and row.result["change_percent"] == 0.0
    outcome, _ = compare(cast, site_a, 0.0, 15.5)
    assert outcome == "Performance is more than 20 % worse than before the change."


def test_a_missing_measurement_step_is_nothing_to_compare(cast, site_a, clock):
    """X3: no baseline step at all (the smoke test is not configured): skipped; another deployment's
    measurements never count for this one."""
    other = deployment(cast, site_a, state=S.RUNNING)
    for order, name, latency in ((1, "baseline", 100.0), (8, "smoke", 500.0)):
        DeploymentStep.objects.create(
            deployment=other,
            order=order,
            phase="forward",
            name=name,
            state=StepState.SUCCEEDED,
            result={"latency_ms": latency},
            started_at=TUESDAY_9_BERLIN,
        )
    d = deployment(cast, site_a, state=S.RUNNING)
    assert runner(d).do_compare() is True
    assert DeploymentStep.objects.get(deployment=d, name="compare").state == StepState.SKIPPED
    fresh = deployment(cast, site_a, state=S.RUNNING)
    DeploymentStep.objects.create(
        deployment=fresh,
        order=8,
        phase="forward",
        name="smoke",
        state=StepState.SUCCEEDED,
        result={"latency_ms": 100.0},
        started_at=TUESDAY_9_BERLIN,
    )
    assert runner(fresh).do_compare() is True
    assert DeploymentStep.objects.get(deployment=fresh, name="compare").state == StepState.SKIPPED


@pytest.mark.parametrize(
    ("name", "outcome"), [("apply", "Apply failed."), ("equipment", "Equipment step failed.")]
)
def test_a_failed_plant_step_names_itself(cast, site_a, clock, name, outcome):
    """X3, C2: the outcome of a failed apply or equipment step says which one failed."""
    Environment.objects.filter(site=site_a, tier="DEV").update(
        pipeline={name: {"adapter": "command", "command": ["false"]}}
    )
    d = deployment(cast, site_a, state=S.RUNNING)
    assert getattr(runner(d), f"do_{name}")() == outcome
    assert DeploymentStep.objects.get(deployment=d, name=name).state == StepState.FAILED


@pytest.mark.parametrize("name", ["apply", "equipment"])
def test_the_configured_plant_step_runs(cast, site_a, clock, name):
    """X1: the apply and equipment steps run what the environment's pipeline configures for them."""
    Environment.objects.filter(site=site_a, tier="DEV").update(
        pipeline={name: {"adapter": "command", "command": ["true"]}}
    )
    d = deployment(cast, site_a, state=S.RUNNING)
    assert getattr(runner(d), f"do_{name}")() is True
    row = DeploymentStep.objects.get(deployment=d, name=name)
    assert (row.state, row.adapter) == (StepState.SUCCEEDED, "command")


# --- Before touching PROD: the gates again (C5, W5) -------------------------------------------------
def test_prod_is_refused_when_a_gate_fails_and_the_rfc_follows(people, site_a, clock):
    """C5: right before PROD the gates are asked again; a failing one ends the deployment before anything
    runs, names every failing gate, and the RFC is marked failed."""
    from releases.models import Rfc
    from releases.states import RfcState

    d = deployment(people, site_a, tier="PROD")
    Rfc.objects.filter(pk=d.rfc_id).update(state=RfcState.SCHEDULED)
    assert engine.run(d.pk, owner="worker-1") == S.FAILED
    d.refresh_from_db()
    assert (d.state, d.finished_at) == (S.FAILED, TUESDAY_9_BERLIN)
    names = {name for name, _, _ in engine.gates._REGISTRY}
    assert d.outcome.startswith("Refused before touching PROD: ")
    parts = d.outcome.removeprefix("Refused before touching PROD: ").split("; ")
    assert len(parts) > 1 and all(part.split(" — ")[0] in names for part in parts)
    assert parts[-1] == "Approvals complete — Not submitted for approval yet."
    assert not DeploymentStep.objects.filter(deployment=d).exists()
    assert Rfc.objects.get(pk=d.rfc_id).state == RfcState.FAILED


def test_a_deployment_that_may_start_is_running_and_due_at_once(cast, site_a, clock):
    """W5, X4: after the checks the deployment runs, due now, with the end of its window recorded."""
    _enforce(site_a)
    d = deployment(cast, site_a, tier="UAT")
    r = runner(d)
    assert r.preflight() is None
    d.refresh_from_db()
    assert (d.state, d.started_at, d.next_action_at) == (S.RUNNING, TUESDAY_9_BERLIN, TUESDAY_9_BERLIN)
    assert d.window_ends_at == TUESDAY_9_BERLIN + timedelta(hours=2)


def test_an_emergency_has_its_own_window(cast, site_a, clock):
    """W6: an emergency deployment on a Monday is not missed for want of a window; a handover still
    bounds it unless the Plant Director lifted it."""
    _enforce(site_a)
    monday_10 = TUESDAY_9_BERLIN - timedelta(days=1) + timedelta(hours=1)  # 10:00 Berlin
    d = deployment(cast, site_a, tier="UAT", start=monday_10, emergency=True)
    clock.move_to(monday_10)
    assert runner(d).preflight() is None
    d.refresh_from_db()
    assert d.window_ends_at == monday_10 + timedelta(hours=3, minutes=30)  # 13:30: the 14:00 handover
    lifted = deployment(cast, site_a, tier="UAT", start=monday_10, emergency=True, handover_override=True)
    assert runner(lifted, "worker-2").preflight() is None
    lifted.refresh_from_db()
    assert lifted.window_ends_at > monday_10 + timedelta(hours=4)
