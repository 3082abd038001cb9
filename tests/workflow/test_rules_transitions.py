"""The RFC lifecycle as the product specifies it, checked against an independent table: who may take
each transition from which state, where it leads, when a reason is required, and what it sets going
(PRODUCT.md R6, A5, A6, W6, E7, E8, C1; the transition matrix of releases/states.py).

The table below is written out by hand on purpose: a test that derives its expectations from
`TRANSITIONS` itself would agree with any slip made there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from approvals.models import ApprovalRound, RoundState
from audit.models import AuditEvent
from core import clock
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from deployments.models import Deployment, DeploymentState
from environments.models import Tier
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import client_for, make_user
from workflow import services as wf
from workflow.models import Review
from workflow.transitions import TRANSITIONS

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 7, 0, tzinfo=UTC)  # a Tuesday morning, before the first window
OPEN = {"draft", "submitted", "in_approval", "approved", "scheduled"}
PEOPLE = {"author"}
MANAGERS = {"author", Role.RELEASE_MANAGER, Role.ADMIN}
RELEASE = {Role.RELEASE_MANAGER, Role.ADMIN}
SYSTEM = {"system"}
# name: (sources, target, who, needs a reason)
SPEC = {
    "submit": ({"draft"}, "submitted", PEOPLE, False),
    "start_approval": ({"submitted"}, "in_approval", SYSTEM, False),
    "approve": ({"in_approval"}, "approved", SYSTEM, False),
    "reject": ({"submitted", "in_approval"}, "draft", SYSTEM, True),
    "request_changes": ({"submitted", "in_approval"}, "draft", SYSTEM, True),
    "reject_final": (OPEN, "rejected", SYSTEM, True),
    "withdraw": ({"submitted", "in_approval", "approved"}, "draft", PEOPLE, True),
    "schedule": ({"approved"}, "scheduled", RELEASE, False),
    "unschedule": ({"scheduled"}, "approved", RELEASE, True),
    "hold": ({"scheduled"}, "approved", SYSTEM, True),
    "start_deployment": ({"scheduled"}, "deploying", SYSTEM, False),
    "mark_missed": ({"scheduled"}, "approved", SYSTEM, True),
    "mark_deployed": ({"deploying"}, "deployed", SYSTEM, False),
    "mark_rolled_back": ({"deploying"}, "rolled_back", SYSTEM, False),
    "mark_failed": ({"deploying"}, "failed", SYSTEM, False),
    "rework": ({"rolled_back", "failed"}, "draft", PEOPLE, True),
    "reschedule": ({"rolled_back", "failed"}, "approved", MANAGERS, True),
    "close": ({"deployed", "rolled_back", "failed"}, "closed", MANAGERS, False),
    "cancel": (OPEN, "cancelled", MANAGERS, True),
}
# actor: the roles it holds at the RFC's site (plant A); "author" is the RFC's author
ACTORS = {
    "author": {"author", Role.DEVELOPER},
    "other_dev": {Role.DEVELOPER},
    "tester": {Role.KEY_USER},
    "itmanager": {Role.IT_MANAGER},
    "releasemgr": {Role.RELEASE_MANAGER},
    "admin": {Role.ADMIN},
    "admin_a": {Role.ADMIN},  # an admin of plant A only
    "rm_b": set(),  # a release manager of plant B only
    "system": {"system"},
}


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def actors(cast, site_b):
    return {
        "author": cast["dev"],
        "other_dev": make_user("dev2", Role.DEVELOPER),
        "tester": cast["tester"],
        "itmanager": cast["itmanager"],
        "releasemgr": cast["releasemgr"],
        "admin": cast["admin"],
        "admin_a": cast["admin_a"],
        "rm_b": make_user("rm_b", Role.RELEASE_MANAGER, site=site_b),
        "system": None,
    }


@pytest.fixture
def draft(cast, site_a):
    return factories.ready_rfc(cast["dev"], cast["tester"], site_a)


def _put(rfc, state: str) -> Rfc:
    Rfc.objects.filter(pk=rfc.pk).update(state=state)
    rfc.refresh_from_db()
    return rfc


def _book(rfc, user, sites=None, state=DeploymentState.SCHEDULED) -> None:
    start = clock.now() + timedelta(days=1)
    for site in sites or [i.site for i in rfc.impacts.all()]:
        Deployment.objects.create(
            rfc=rfc,
            environment=site.environments.get(tier=Tier.PROD),
            scheduled_start=start,
            scheduled_end=start + timedelta(hours=1),
            duration_minutes=30,
            scheduled_by=user,
            state=state,
        )


def test_the_matrix_names_exactly_the_specified_transitions():
    """Every transition of the lifecycle exists, and no other (C5: the page offers only these)."""
    assert set(TRANSITIONS) == set(SPEC)


def test_who_may_take_each_transition_from_each_state(actors, draft):
    """E7, A6: a transition is open only from its source states, and only to the author, the roles at
    the RFC's site or the portal itself that the lifecycle names; a role at another site is nobody."""
    wrong = []
    for name, (sources, _, who, _) in SPEC.items():
        for state in RfcState.values:
            draft.state = state
            for label, user in actors.items():
                expected = state in sources and bool(ACTORS[label] & who)
                if wf.may_transition(user, draft, name) != expected:
                    wrong.append((name, state, label, expected))
    assert wrong == []


@pytest.mark.parametrize("name", [n for n, spec in SPEC.items() if not spec[3]])
def test_each_transition_without_a_reason_lands_in_its_target_and_is_audited(name, cast, draft):
    """C1: the state changes to the specified target, and the trail records who, from where, to where."""
    sources, target, who, _ = SPEC[name]
    source = sorted(sources)[0]
    if name != "submit":
        _put(draft, source)
    if name == "schedule":
        _book(draft, cast["releasemgr"])
    if name == "close":  # an RFC closes once its post-implementation review is complete
        Review.objects.create(rfc=draft, outcome=source, close_code="successful", completed_at=clock.now())
    actor = None if who == SYSTEM else cast["releasemgr"] if name in ("schedule", "close") else cast["dev"]
    result = wf.transition(actor, draft, name)
    assert result.state == target
    assert Rfc.objects.get(pk=draft.pk).state == target
    event = AuditEvent.objects.filter(action=TRANSITIONS[name].event).latest("seq")
    assert event.before == {"state": source}
    assert event.after["state"] == target
    assert event.actor_name == ("system" if actor is None else actor.username)
    assert event.actor_id == (None if actor is None else actor.pk)
    assert event.object_id == draft.number and event.reason == ""


@pytest.mark.parametrize("name", [n for n, spec in SPEC.items() if spec[3]])
def test_transitions_that_need_a_reason_refuse_a_blank_one_and_keep_a_given_one(name, cast, draft):
    """W6, E8, A6: rejecting, withdrawing, unscheduling, missing and cancelling say why; the reason is
    kept in the trail, trimmed."""
    sources, target, who, _ = SPEC[name]
    source = sorted(sources)[0]
    _put(draft, source)
    actor = None if who == SYSTEM else cast["releasemgr"] if name == "unschedule" else cast["dev"]
    data = None
    if name in ("rework", "reschedule"):  # re-planning follows a completed review (test_replan.py)
        Review.objects.create(rfc=draft, outcome=source, close_code="failed", completed_at=clock.now())
        data = {"release": factories.release(cast["dev"], "1.0.2")} if name == "rework" else None
    with pytest.raises(ValidationError) as refused:
        wf.transition(actor, draft, name, reason="   ", data=data)
    assert refused.value.message_dict == {"reason": [f"{TRANSITIONS[name].label} needs a reason."]}
    assert Rfc.objects.get(pk=draft.pk).state == source
    assert not AuditEvent.objects.filter(action=TRANSITIONS[name].event).exists()
    assert wf.transition(actor, draft, name, reason="  line 2 is down  ", data=data).state == target
    assert AuditEvent.objects.get(action=TRANSITIONS[name].event).reason == "line 2 is down"


@pytest.mark.parametrize("name", ["submit", "withdraw", "schedule", "unschedule", "close", "cancel"])
def test_the_portal_cannot_take_a_persons_transition(name, draft):
    """E7: what a person decides (submit, withdraw, schedule, close, cancel) is never taken by the system."""
    source = sorted(SPEC[name][0])[0]
    _put(draft, source)
    with pytest.raises(PermissionDenied, match="is taken by a person, not by the portal"):
        wf.transition(None, draft, name, reason="because")
    assert Rfc.objects.get(pk=draft.pk).state == source


def test_a_refusal_names_the_rfc_and_the_transition(cast, draft):
    """C5: a refused transition says what was refused and for which RFC."""
    with pytest.raises(PermissionDenied) as denied:
        wf.transition(cast["tester"], draft, "submit")
    assert str(denied.value) == f"You may not submit for approval {draft.number}."
    _put(draft, RfcState.CLOSED)
    with pytest.raises(StateConflict) as conflict:
        wf.transition(cast["dev"], draft, "submit")
    assert (
        str(conflict.value) == f"{draft.number} is closed; 'Submit for approval' is not possible from there."
    )


def test_people_may_not_take_system_transitions_even_as_admin(cast, draft):
    """A6: only the approval chain approves; an admin's click is refused."""
    _put(draft, RfcState.IN_APPROVAL)
    with pytest.raises(PermissionDenied, match=f"You may not approve {draft.number}"):
        wf.transition(cast["admin"], draft, "approve")
    assert Rfc.objects.get(pk=draft.pk).state == RfcState.IN_APPROVAL


def test_schedule_needs_a_live_prod_booking_at_every_target_site(cast, site_a, site_b):
    """W1, W5: an RFC for two plants is scheduled only when both PROD slots are booked; a cancelled
    booking does not count."""
    rfc = factories.rfc(
        cast["dev"],
        site_a,
        impacts=[
            {"site": site_a, "lines": ["Line 2"], "modules": []},
            {"site": site_b, "lines": ["Line 7"], "modules": []},
        ],
    )
    _put(rfc, RfcState.APPROVED)
    _book(rfc, cast["releasemgr"], [site_a])
    _book(rfc, cast["releasemgr"], [site_b], state=DeploymentState.CANCELLED)
    with pytest.raises(RuleViolation) as refused:
        wf.transition(cast["releasemgr"], rfc, "schedule")
    assert refused.value.rule == "Deployment window"
    assert str(refused.value) == "Book a PROD slot for every target site first (the scheduling form)."
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    _book(rfc, cast["releasemgr"], [site_b])
    assert wf.transition(cast["releasemgr"], rfc, "schedule").state == RfcState.SCHEDULED


def test_submission_stores_class_and_time_and_opens_the_chain(cast, draft):
    """R5, A1: submitting fixes the change class and the time, and opens the first approval round."""
    wf.submit(cast["dev"], draft)
    stored = Rfc.objects.get(pk=draft.pk)
    assert (stored.state, stored.change_class, stored.submitted_at) == ("submitted", "patch", NOW)
    assert ApprovalRound.objects.get(rfc=draft).state == RoundState.OPEN
    assert AuditEvent.objects.get(action="releases.rfc.submitted").after == {
        "state": "submitted",
        "change_class": "patch",
    }


def test_submission_refused_by_a_gate_changes_nothing(cast, site_a):
    """R6, C5: without UAT sign-off the RFC stays a draft, the refusal names the gate, no round opens."""
    rfc = factories.rfc(cast["dev"], site_a)
    with pytest.raises(RuleViolation) as refused:
        wf.submit(cast["dev"], rfc)
    assert refused.value.rule == "UAT sign-off"
    assert str(refused.value).startswith("Not ready to submit: UAT sign-off — No UAT sign-off with evidence")
    assert refused.value.failed == [
        {
            "name": "UAT sign-off",
            "passed": False,
            "reason": "No UAT sign-off with evidence for PLA.",
            "waived": False,
            "waived_by": "",
            "waived_at": None,
        }
    ]
    stored = Rfc.objects.get(pk=rfc.pk)
    assert (stored.state, stored.submitted_at) == ("draft", None)
    assert not ApprovalRound.objects.filter(rfc=rfc).exists()


def test_a_refused_submission_names_every_failing_gate(cast, site_a):
    """C5: every failing gate is named, one after the other."""
    rfc = factories.rfc(cast["dev"], site_a, rollback_plan=" ")
    with pytest.raises(RuleViolation) as refused:
        wf.submit(cast["dev"], rfc)
    assert str(refused.value) == (
        "Not ready to submit: Rollback plan — The rollback plan is empty.; "
        "UAT sign-off — No UAT sign-off with evidence for PLA."
    )
    assert refused.value.rule == "Rollback plan"


def test_extra_data_lands_in_the_audit_event(draft):
    """C1: what the portal adds to a transition (the approving round) is in the trail."""
    _put(draft, RfcState.IN_APPROVAL)
    wf.transition(None, draft, "approve", data={"round": 3})
    assert AuditEvent.objects.get(action="releases.rfc.approved").after == {"state": "approved", "round": 3}


@pytest.mark.parametrize(
    ("name", "round_state", "cancels"),
    [
        ("withdraw", RoundState.WITHDRAWN, "RFC withdraw"),
        ("cancel", RoundState.WITHDRAWN, "RFC cancel"),
        ("reject", RoundState.REJECTED, None),
        # A change rejected for good gives its PROD slots back (it will never deploy).
        ("reject_final", RoundState.REJECTED, "RFC reject_final"),
    ],
)
def test_leaving_the_chain_closes_the_round_and_frees_the_slots(cast, draft, name, round_state, cancels):
    """A6, W1: withdrawing or cancelling stops the open round and frees booked PROD slots; a rejection
    closes the round as rejected and keeps the slots (the author mends the draft); a final rejection
    frees them."""
    wf.submit(cast["dev"], draft)
    _book(draft, cast["releasemgr"])
    actor = None if SPEC[name][2] == SYSTEM else cast["dev"]
    wf.transition(actor, draft, name, reason="not now")
    assert ApprovalRound.objects.get(rfc=draft).state == round_state
    deployment = Deployment.objects.get(rfc=draft, environment__tier="PROD")
    if cancels:
        assert (deployment.state, deployment.cancel_reason) == (DeploymentState.CANCELLED, cancels)
    else:
        assert deployment.state == DeploymentState.SCHEDULED


def test_unscheduling_frees_the_booked_slots(cast, draft):
    """W1: unscheduling gives the PROD slot back."""
    _put(draft, RfcState.SCHEDULED)
    _book(draft, cast["releasemgr"])
    wf.transition(cast["admin"], draft, "unschedule", reason="plant shutdown moved")
    deployment = Deployment.objects.get(rfc=draft, environment__tier="PROD")
    assert (deployment.state, deployment.cancel_reason) == (DeploymentState.CANCELLED, "RFC unscheduled")


def test_the_open_filter_lists_exactly_the_unfinished_rfcs(cast, draft):
    """C2: 'open' in the RFC list means not finished: draft to deploying, nothing after."""
    client = client_for(cast["dev"])
    unfinished = OPEN | {"deploying"}
    shown = {}
    for state in RfcState.values:
        _put(draft, state)
        shown[state] = draft.number in client.get("/rfcs/", {"state": "open"}).content.decode()
    assert shown == {state: state in unfinished for state in RfcState.values}


def test_only_a_draft_is_edited(cast, draft):
    """A6: content changes only in draft; every later state refuses the edit."""
    for state in RfcState.values:
        _put(draft, state)
        if state == "draft":
            assert wf.update_rfc(cast["dev"], draft, title=f"Edit in {state}").title == "Edit in draft"
        else:
            with pytest.raises(StateConflict, match="only a draft can be edited"):
                wf.update_rfc(cast["dev"], draft, title=f"Edit in {state}")


def test_an_unknown_transition_is_a_field_error(cast, draft):
    """C5: the API answers an unknown transition name as an error of the field 'name'."""
    with pytest.raises(ValidationError) as refused:
        wf.transition(cast["dev"], draft, "teleport")
    assert refused.value.message_dict == {"name": ["There is no transition 'teleport'."]}
