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
