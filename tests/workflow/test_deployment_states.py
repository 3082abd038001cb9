"""The Deployment state machine (DESIGN principle 3): every (from, to) pair, legal or not (W5, X2, X4)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from audit.models import AuditEvent
from core import clock
from deployments import states
from deployments.models import Deployment
from deployments.states import ALLOWED, TERMINAL, DeploymentState, IllegalMove, move
from environments.models import Tier
from tests import factories

S = DeploymentState
PAIRS = list(itertools.product(S.values, S.values))
EXPECTED = {
    (S.SCHEDULED, S.RUNNING),
    (S.SCHEDULED, S.MISSED),
    (S.SCHEDULED, S.FAILED),
    (S.SCHEDULED, S.CANCELLED),
    (S.RUNNING, S.VERIFYING),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.ROLLING_BACK),
    (S.VERIFYING, S.SUCCEEDED),
    (S.VERIFYING, S.ROLLING_BACK),
    (S.ROLLING_BACK, S.ROLLED_BACK),
    (S.ROLLING_BACK, S.ROLLBACK_FAILED),
    (S.ROLLING_BACK, S.FAILED),
}


def test_the_declared_table_is_exactly_the_intended_one():
    declared = {(source, target) for source, targets in ALLOWED.items() for target in targets}
    assert declared == EXPECTED
    assert set(ALLOWED) == set(S.values)
    assert {S.SUCCEEDED, S.ROLLED_BACK, S.ROLLBACK_FAILED, S.FAILED, S.CANCELLED, S.MISSED} == TERMINAL
    # A deployment that holds a slot is never final, and every in-progress one holds its slot.
    assert not set(states.ACTIVE) & TERMINAL
    assert set(states.IN_PROGRESS) <= set(states.ACTIVE)
    assert set(states.ROLLBACK_REQUESTABLE) <= set(states.IN_PROGRESS)


@pytest.fixture
def deployment(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    start = clock.now() + timedelta(hours=1)
    return Deployment.objects.create(
        rfc=rfc,
        environment=site_a.environments.get(tier=Tier.DEV),
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=30),
        duration_minutes=30,
        scheduled_by=cast["releasemgr"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("source,target", PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_every_move_from_every_state(deployment, source, target):
    Deployment.objects.filter(pk=deployment.pk).update(state=source)
    deployment.refresh_from_db()
    audited = []
    if (source, target) in EXPECTED:
        move(deployment, target, audit=lambda: audited.append(target), outcome="moved")
        row = Deployment.objects.get(pk=deployment.pk)
        assert (row.state, row.outcome) == (target, "moved")
        assert audited == [target]
    else:
        with pytest.raises(IllegalMove):
            move(deployment, target, audit=lambda: audited.append(target), outcome="moved")
        row = Deployment.objects.get(pk=deployment.pk)
        assert (row.state, row.outcome) == (source, "")  # nothing half-written
        assert audited == []


@pytest.mark.django_db
def test_an_illegal_move_is_a_state_conflict_with_a_plain_message(deployment):
    from core.errors import StateConflict

    Deployment.objects.filter(pk=deployment.pk).update(state=S.SUCCEEDED)
    deployment.refresh_from_db()
    with pytest.raises(StateConflict, match="succeeded cannot become rolling back"):
        move(deployment, S.ROLLING_BACK)
    assert not AuditEvent.objects.filter(action__startswith="releases.deployment.rolling").exists()


def test_a_deployment_writes_its_moves_in_the_past_tense():
    """C1: one tense; a deployment's lasting states read as the moment they began."""
    from audit.actions import canonical

    for state in S.values:
        action = canonical(f"releases.deployment.{state}").rsplit(".", 1)[1]
        assert any(word.endswith("ed") for word in action.split("_")), action


def test_an_unknown_state_allows_no_move():
    assert not states.may_move("bogus", S.RUNNING)
    assert not states.may_move(S.SUCCEEDED, "bogus")


@pytest.mark.django_db
def test_every_registered_follower_hears_each_move_once_with_its_actor(deployment, cast):
    heard = []

    def spy(moved, source, target, *, actor=None):
        heard.append((moved.pk, source, target, actor))

    unfollow = states.follow_with(spy)
    states.follow_with(spy)  # registering twice changes nothing
    try:
        move(deployment, S.CANCELLED, actor=cast["releasemgr"], cancel_reason="test")
    finally:
        unfollow()
    assert heard == [(deployment.pk, S.SCHEDULED, S.CANCELLED, cast["releasemgr"])]
    Deployment.objects.filter(pk=deployment.pk).update(state=S.SCHEDULED)
    deployment.refresh_from_db()
    move(deployment, S.CANCELLED)
    assert len(heard) == 1  # unregistered: no longer told


# --- The RFC follows its PROD deployments (workflow.services.follow_deployment) ---------------------
def _prod(rfc, site, state=S.SCHEDULED, by=None):
    return factories.booking(rfc, site, by, state=state)


@pytest.fixture
def scheduled(cast, site_a):
    from releases.models import Rfc
    from releases.states import RfcState

    rfc = factories.rfc(cast["dev"], site_a)
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SCHEDULED)
    rfc.refresh_from_db()
    return rfc


def _rfc_state(rfc):
    from releases.models import Rfc

    return Rfc.objects.get(pk=rfc.pk).state


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path,rfc_state",
    [
        ([S.RUNNING], "deploying"),
        ([S.RUNNING, S.VERIFYING, S.SUCCEEDED], "deployed"),
        ([S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK], "rolled_back"),
        ([S.RUNNING, S.ROLLING_BACK, S.ROLLBACK_FAILED], "failed"),
        ([S.RUNNING, S.ROLLING_BACK, S.FAILED], "failed"),
        ([S.FAILED], "failed"),  # refused before touching PROD: it started, and failed
        ([S.MISSED], "approved"),  # the window passed: back to approved, to be booked again
    ],
)
def test_the_rfc_follows_its_prod_deployment(cast, site_a, scheduled, path, rfc_state):
    """W5, X1–X4: what the RFC becomes as its one PROD deployment moves, and the audit of it."""
    deployment = _prod(scheduled, site_a, by=cast["releasemgr"])
    for target in path:
        move(deployment, target, outcome=f"moved to {target}")
    assert _rfc_state(scheduled) == rfc_state
    started = AuditEvent.objects.filter(action="releases.rfc.deployment_started", object_id=scheduled.number)
    assert started.count() == (0 if path == [S.MISSED] else 1)
    if started:
        assert started.get().after["deployment"] == str(deployment.uuid)


@pytest.mark.django_db
def test_the_rfc_waits_for_every_prod_site(cast, site_a, site_b, scheduled):
    """E10: a change at two sites is deployed when both PROD deployments have succeeded."""
    first = _prod(scheduled, site_a, by=cast["releasemgr"])
    second = _prod(scheduled, site_b, by=cast["releasemgr"])
    for target in (S.RUNNING, S.SUCCEEDED):
        move(first, target)
    assert _rfc_state(scheduled) == "deploying"
    move(second, S.RUNNING)
    move(second, S.ROLLING_BACK)
    move(second, S.ROLLED_BACK, outcome="smoke test failed")
    assert _rfc_state(scheduled) == "rolled_back"
    assert AuditEvent.objects.get(action="releases.rfc.rolled_back").reason == "smoke test failed"


@pytest.mark.django_db
def test_a_person_cancelling_a_prod_booking_unschedules_the_rfc_as_themselves(cast, site_a, scheduled):
    """W1: cancelling a PROD booking unschedules the RFC, in the canceller's name; the system's own
    cancellations (an unschedule freeing the other bookings) do not."""
    deployment = _prod(scheduled, site_a, by=cast["releasemgr"])
    move(deployment, S.CANCELLED, actor=cast["releasemgr"], cancel_reason="line stop moved")
    assert _rfc_state(scheduled) == "approved"
    event = AuditEvent.objects.get(action="releases.rfc.unscheduled")
    assert (event.actor_name, event.reason) == ("releasemgr", "line stop moved")
