"""The approval chain and the electronic signature (PRODUCT.md A1–A6, W6): which steps a change
needs, in which order they open, who may sign each, and what content a signature is bound to."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder

from approvals import services as approvals
from approvals.models import (
    Absence,
    Approval,
    ApprovalPolicy,
    ApprovalRound,
    ApprovalState,
    ApprovalStep,
    PolicyStep,
    RoundPurpose,
    RoundState,
    Signature,
    StepRule,
    StepState,
)
from audit.models import AuditEvent
from core.errors import StateConflict
from core.roles import Role
from releases import services as rfc_services
from releases.models import Evidence, EvidenceKind, Release, Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, make_user
from workflow import services as wf

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 7, 0, tzinfo=UTC)
IT, OPS, CIO, PD = "it_manager", "operations_manager", "cio", "plant_director"
BUSINESS_NOTE = "High-risk change: business sign-off"


@pytest.fixture(autouse=True)
def _frozen(monkeypatch):
    monkeypatch.setattr("approvals.mail.after_commit", lambda send: send())
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def managers(people, site_b):
    return {**people, "itmanager_b": make_user("itmanager_b", Role.IT_MANAGER, site=site_b)}


def ready(people, site, version="1.0.1", **fields):
    return factories.ready_rfc(people["dev"], people["tester"], site, version=version, **fields)


def submitted(people, site, version="1.0.1", **fields):
    return wf.submit(people["dev"], ready(people, site, version, **fields))


def major(people, site, **fields):
    return submitted(
        people, site, "2.0.0", estimated_downtime_minutes=10, retraining_note="Shift leads briefed.", **fields
    )


def two_sites(people, site_a, site_b, version="1.0.1"):
    rfc = factories.rfc(
        people["dev"],
        site_a,
        version=version,
        impacts=[
            {"site": site_a, "lines": ["Line 2"], "modules": []},
            {"site": site_b, "lines": ["Line 7"], "modules": []},
        ],
    )
    for site in (site_a, site_b):
        rfc_services.sign_off_uat(people["tester"], rfc, site, "Printed 50 labels.", [factories.png()])
    return rfc


def steps(rfc, number=None) -> list[tuple[list[str], str, str, str]]:
    rnd = ApprovalRound.objects.filter(rfc=rfc).order_by("-number").first()
    return [(s.roles, s.rule, s.note, s.state) for s in rnd.steps.order_by("order")]


def pending(rfc, role: str, site=None) -> Approval:
    query = Approval.objects.filter(rfc=rfc, role=role, state=ApprovalState.PENDING)
    return query.get(site=site) if site else query.get()


def approve(user, approval, **extra) -> Signature:
    return wf.sign(user, approval, "approve", PASSWORD, **extra)


# --- chain_for: which steps (A1–A4, W6) -------------------------------------------------------------
def test_the_chain_of_each_class(managers, site_a):
    """A1: patch → IT Manager; A2: minor → IT then Operations; A3: major → then CIO and Plant Director."""
    assert [s[:3] for s in steps(submitted(managers, site_a))] == [([IT], "all", "")]
    assert [s[:3] for s in steps(submitted(managers, site_a, "1.1.0"))] == [
        ([IT], "all", ""),
        ([OPS], "all", ""),
    ]
    assert [s[:3] for s in steps(major(managers, site_a))] == [
        ([IT], "all", ""),
        ([OPS], "all", ""),
        ([CIO, PD], "all", ""),
    ]
    opened = AuditEvent.objects.filter(action="approvals.round.opened").latest("seq")
    assert opened.after["steps"] == ["IT Manager", "Operations Manager", "CIO and Plant Director"]


def test_a_high_risk_change_gets_the_business_step_second(managers, site_a):
    """A4: technical and business sign-off: the business step comes right after the first step."""
    policy = ApprovalPolicy.objects.get_or_create(change_class="patch")[0]
    PolicyStep.objects.filter(policy=policy).delete()
    PolicyStep.objects.create(policy=policy, order=1, roles=[IT], rule=StepRule.ALL)
    PolicyStep.objects.create(policy=policy, order=2, roles=[CIO], rule=StepRule.ALL)
    rfc = submitted(managers, site_a, high_risk=True)
    assert [s[:3] for s in steps(rfc)] == [
        ([IT], "all", ""),
        ([OPS], "all", BUSINESS_NOTE),
        ([CIO], "all", ""),
    ]
    opened = AuditEvent.objects.get(action="approvals.round.opened")
    assert opened.after["steps"] == ["IT Manager", f"Operations Manager ({BUSINESS_NOTE})", "CIO"]


def test_a_high_risk_change_whose_chain_has_the_business_role_gets_no_extra_step(managers, site_a):
    """A4: the Operations Manager already signs a minor change; high risk adds no second business step."""
    rfc = submitted(managers, site_a, "1.1.0", high_risk=True)
    assert [s[:3] for s in steps(rfc)] == [([IT], "all", ""), ([OPS], "all", "")]


def test_an_emergency_is_approved_by_the_cio_or_the_plant_director(managers, site_a):
    """W6: one signature of the CIO or the Plant Director; its review later takes the normal chain."""
    rfc = ready(managers, site_a, emergency=True, emergency_reason="Line 2 cannot print labels")
    assert approvals.chain_for(rfc) == [([CIO, PD], "any", "Emergency change: the CIO or the Plant Director")]
    assert approvals.chain_for(rfc, purpose=RoundPurpose.REVIEW) == [([IT], "all", "")]


def test_missing_policies_fall_back_to_the_defaults(managers, site_a):
    """A1–A3: with no policy configured the product's defaults apply (and are stored)."""
    ApprovalPolicy.objects.all().delete()
    rfc = ready(managers, site_a, "1.1.0")
    Rfc.objects.filter(pk=rfc.pk).update(change_class="minor")
    rfc.refresh_from_db()
    assert approvals.chain_for(rfc) == [([IT], "all", ""), ([OPS], "all", "")]
    assert ApprovalPolicy.objects.count() == 3


# --- open_round -------------------------------------------------------------------------------------
def test_a_round_opens_its_first_step_only(managers, site_a, site_b):
    """A2, A5: the first step is pending and mailed, the later ones wait; one approval per site and role."""
    rfc = wf.submit(managers["dev"], two_sites(managers, site_a, site_b, "1.1.0"))
    rnd = ApprovalRound.objects.get(rfc=rfc)
    assert (rnd.number, rnd.change_class, rnd.high_risk, rnd.state) == (1, "minor", False, "open")
    assert (rnd.created_at, rnd.purpose, rnd.due_at) == (NOW, "approval", None)
    assert rnd.content_hash == approvals.content_hash(rfc)
    first, second = rnd.steps.order_by("order")
    assert (first.order, first.state, first.activated_at) == (1, StepState.PENDING, NOW)
    assert (second.order, second.state, second.activated_at) == (2, StepState.WAITING, None)
    rows = {(a.role, a.site.code, a.state, a.notify_due) for a in Approval.objects.filter(rfc=rfc)}
    assert rows == {
        (IT, "PLA", "pending", True),
        (IT, "PLB", "pending", True),
        (OPS, "PLA", "waiting", False),
        (OPS, "PLB", "waiting", False),
    }
    event = AuditEvent.objects.get(action="approvals.round.opened")
    assert (event.actor_name, event.object_type, event.object_id) == (
        "dev",
        "approvals.approvalround",
        rnd.audit_object_id,
    )
    assert event.after == {
        "round": 1,
        "content_hash": rnd.content_hash,
        "purpose": "approval",
        "due_at": None,
        "steps": ["IT Manager", "Operations Manager"],
    }


def test_rounds_are_numbered_per_rfc(managers, site_a):
    """A6: a resubmission after a rejection opens round 2 (whatever other RFCs' rounds there are)."""
    other = submitted(managers, site_a, "1.0.2")
    rfc = submitted(managers, site_a)
    wf.sign(managers["itmanager"], pending(rfc, IT), "reject", PASSWORD, reason="Test the undo first")
    wf.submit(managers["dev"], rfc)
    assert list(ApprovalRound.objects.filter(rfc=rfc).order_by("number").values_list("number", "state")) == [
        (1, "rejected"),
        (2, "open"),
    ]
    assert ApprovalRound.objects.get(rfc=other).number == 1


def test_a_review_round_is_due_five_days_after_the_start(managers, site_a):
    """W6: the post-implementation review of an emergency change, opened once, due after 5 days."""
    rfc = ready(managers, site_a, emergency=True, emergency_reason="Line 2 cannot print labels")
    start = NOW + timedelta(days=1)
    rnd = approvals.open_review(rfc, managers["releasemgr"], start)
    assert (rnd.purpose, rnd.due_at, rnd.number) == ("review", start + timedelta(days=5), 1)
    assert approvals.open_review(rfc, managers["releasemgr"], start) is None
    event = AuditEvent.objects.get(action="approvals.review.opened")
    assert event.after["due_at"] == (start + timedelta(days=5)).isoformat()
    assert event.after["purpose"] == "review"


# --- sign_verified: the order of the steps ------------------------------------------------------------
def test_a_waiting_step_cannot_be_signed_before_its_turn(managers, site_a):
    """A2: IT Manager first, then Operations: the second signature cannot come first."""
    rfc = submitted(managers, site_a, "1.1.0")
    waiting = Approval.objects.get(rfc=rfc, role=OPS)
    with pytest.raises(StateConflict, match="This approval is waiting; nothing to sign."):
        approve(managers["opsmanager"], waiting)
    assert not Signature.objects.exists()


def test_each_signature_opens_exactly_the_next_step(managers, site_a):
    """A3: IT → Operations → CIO and Plant Director, one step at a time, never skipping one."""
    rfc = major(managers, site_a)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SUBMITTED
    approve(managers["itmanager"], pending(rfc, IT))
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.IN_APPROVAL
    assert [s[3] for s in steps(rfc)] == ["approved", "pending", "waiting"]
    assert {a.role for a in Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING)} == {OPS}
    second = ApprovalStep.objects.get(round__rfc=rfc, order=2)
    assert second.activated_at == NOW
    approve(managers["opsmanager"], pending(rfc, OPS))
    assert [s[3] for s in steps(rfc)] == ["approved", "approved", "pending"]
    approve(managers["cio"], pending(rfc, CIO))
    assert [s[3] for s in steps(rfc)] == ["approved", "approved", "pending"]  # ALL: the director too
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.IN_APPROVAL
    approve(managers["plantdirector"], pending(rfc, PD))
    rnd = ApprovalRound.objects.get(rfc=rfc)
    assert (rnd.state, rnd.closed_at) == (RoundState.APPROVED, NOW)
    assert [s[3] for s in steps(rfc)] == ["approved"] * 3
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    assert AuditEvent.objects.get(action="releases.rfc.approved").after == {"state": "approved", "round": 1}


def test_an_all_step_waits_for_every_site(managers, site_a, site_b):
    """A1: an RFC for two plants needs the IT Manager of each before the round goes on."""
    rfc = wf.submit(managers["dev"], two_sites(managers, site_a, site_b))
    approve(managers["itmanager_a"], pending(rfc, IT, site_a))
    step = ApprovalStep.objects.get(round__rfc=rfc)
    assert (step.state, step.completed_at) == (StepState.PENDING, None)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.IN_APPROVAL
    approve(managers["itmanager_b"], pending(rfc, IT, site_b))
    step.refresh_from_db()
    assert (step.state, step.completed_at) == (StepState.APPROVED, NOW)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED


def test_an_any_step_is_done_with_one_signature(managers, site_a):
    """W6: the CIO or the Plant Director: the first signature completes the step, the other is not needed."""
    rfc = submitted(managers, site_a, emergency=True, emergency_reason="Line 2 cannot print labels")
    approve(managers["plantdirector"], pending(rfc, PD))
    other = Approval.objects.get(rfc=rfc, role=CIO)
    assert (other.state, other.notify_due) == (ApprovalState.NOT_NEEDED, False)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED


def test_a_rejection_ends_the_round_and_returns_the_rfc(managers, site_a):
    """A6: one rejection ends the round; what still waited is closed and nobody is mailed about it."""
    rfc = submitted(managers, site_a, "1.1.0")
    signature = wf.sign(
        managers["itmanager"], pending(rfc, IT), "reject", PASSWORD, reason="  No rollback test  "
    )
    assert (signature.decision, signature.reason) == ("reject", "No rollback test")
    assert [s[3] for s in steps(rfc)] == ["rejected", "closed"]
    rnd = ApprovalRound.objects.get(rfc=rfc)
    assert (rnd.state, rnd.closed_at) == (RoundState.REJECTED, NOW)
    assert Approval.objects.get(rfc=rfc, role=OPS).state == ApprovalState.CLOSED
    assert Approval.objects.get(rfc=rfc, role=IT).state == ApprovalState.REJECTED
    stored = Rfc.objects.get(pk=rfc.pk)
    assert stored.state == RfcState.DRAFT
    assert AuditEvent.objects.get(action="releases.rfc.rejected").reason == (
        "rejected as IT Manager of PLA: No rollback test"
    )
    assert AuditEvent.objects.get(action="approvals.signature.rejected").reason == "No rollback test"


def test_a_review_neither_approves_nor_rejects_the_rfc(managers, site_a):
    """W6: the review after an emergency change is on record; the RFC's own state is left alone."""
    rfc = ready(managers, site_a, emergency=True, emergency_reason="Line 2 cannot print labels")
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SUBMITTED)
    rnd = approvals.open_review(rfc, managers["releasemgr"], NOW)
    approve(managers["itmanager"], pending(rfc, IT))
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SUBMITTED
    rnd.refresh_from_db()
    assert rnd.state == RoundState.APPROVED
    completed = AuditEvent.objects.get(action="approvals.review.completed")
    assert completed.after == {"round": 1}
    assert (completed.actor_name, completed.object_type, completed.object_id) == (
        "itmanager",
        "approvals.approvalround",
        rnd.audit_object_id,
    )
    again = approvals.open_round(rfc, managers["releasemgr"], purpose=RoundPurpose.REVIEW)
    wf.sign(managers["itmanager"], pending(rfc, IT), "reject", PASSWORD, reason="No follow-up")
    again.refresh_from_db()
    assert again.state == RoundState.REJECTED
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SUBMITTED
    rejected = AuditEvent.objects.get(action="approvals.review.rejected")
    assert (rejected.reason, rejected.actor_name, rejected.object_type, rejected.object_id) == (
        "No follow-up",
        "itmanager",
        "approvals.approvalround",
        again.audit_object_id,
    )


def test_the_signature_records_who_when_what_and_how(managers, site_a):
    """A5, A6: an electronic signature: printed name, time, meaning, content, channel."""
    rfc = submitted(managers, site_a)
    expected = approvals.content_hash(rfc)
    signature = approve(managers["itmanager"], pending(rfc, IT), via="email", expected_hash=expected)
    assert (signature.printed_name, signature.signed_at, signature.decision) == ("Itmanager", NOW, "approve")
    assert (signature.meaning, signature.content_hash, signature.via) == (
        "approved as IT Manager of PLA",
        expected,
        "email",
    )
    assert signature.on_behalf_of is None and signature.reason == ""
    approval = Approval.objects.get(pk=signature.approval_id)
    assert (approval.state, approval.decided_at, approval.notify_due) == ("approved", NOW, False)
    event = AuditEvent.objects.get(action="approvals.signature.approved")
    assert event.after == {
        "meaning": "approved as IT Manager of PLA",
        "printed_name": "Itmanager",
        "signed_at": NOW.isoformat(),
        "content_hash": expected,
        "via": "email",
        "on_behalf_of": None,
    }
    assert event.actor_name == "itmanager"


def test_a_signature_over_other_content_is_refused(managers, site_a):
    """A6: the signer saw a version that is no longer the RFC; or the RFC changed since the request."""
    rfc = submitted(managers, site_a)
    with pytest.raises(StateConflict) as changed:
        approve(managers["itmanager"], pending(rfc, IT), expected_hash="0" * 64)
    assert (
        str(changed.value) == "The RFC changed since this approval was requested; reload it and sign again."
    )
    Rfc.objects.filter(pk=rfc.pk).update(title="Changed behind the round's back")
    with pytest.raises(StateConflict, match="reload it and sign again"):
        approve(managers["itmanager"], pending(rfc, IT))
    assert not Signature.objects.exists()


def test_a_decision_is_approve_request_changes_or_reject(managers, site_a):
    """A6: the meaning of a signature is one of three; a rejection says why, a request asks what."""
    rfc = submitted(managers, site_a)
    for nothing in ("maybe", ""):
        with pytest.raises(ValidationError, match="Choose a decision: approve, request changes or reject"):
            wf.sign_verified(managers["itmanager"], pending(rfc, IT), nothing)
    with pytest.raises(ValidationError, match="A rejection needs a reason"):
        wf.sign_verified(managers["itmanager"], pending(rfc, IT), "reject", "  ")
    with pytest.raises(ValidationError, match="Say what should change"):
        wf.sign_verified(managers["itmanager"], pending(rfc, IT), "changes", "\n")
    assert not Signature.objects.exists()


# --- Who may sign: separation of duties and capacity (A6, E7) -----------------------------------------
def test_the_author_and_the_uat_signer_never_approve(managers, site_a):
    """A6: nobody approves their own RFC, nor one whose UAT they signed off."""
    author = make_user("author_it", Role.DEVELOPER, Role.IT_MANAGER)
    tester = make_user("tester_it", Role.KEY_USER, Role.IT_MANAGER)
    rfc = wf.submit(author, factories.ready_rfc(author, tester, site_a))
    with pytest.raises(PermissionDenied) as wrote:
        approve(author, pending(rfc, IT))
    assert str(wrote.value) == "You wrote this RFC: you cannot approve it (separation of duties)."
    with pytest.raises(PermissionDenied) as tested:
        approve(tester, pending(rfc, IT))
    assert str(tested.value) == (
        "You signed off this RFC's UAT: you cannot approve it (separation of duties)."
    )
    assert approvals.capacity(managers["itmanager"], pending(rfc, IT)) == approvals.Capacity()


def test_a_site_role_signs_only_at_its_site(managers, site_a, site_b):
    """E7: an IT Manager of plant B does not sign for plant A; the refusal names role and plant."""
    rfc = submitted(managers, site_a)
    with pytest.raises(PermissionDenied, match="Only a IT Manager of PLA signs this approval."):
        approvals.capacity(managers["itmanager_b"], pending(rfc, IT))
    with pytest.raises(PermissionDenied):
        approvals.capacity(managers["opsmanager"], pending(rfc, IT))
    assert approvals.capacity(managers["itmanager_a"], pending(rfc, IT)).on_behalf_of is None


def test_a_delegate_signs_on_behalf_of_an_absent_holder_while_the_absence_lasts(managers, site_a):
    """A5: an approver away names a delegate holding the same role elsewhere; only while away."""
    rfc = submitted(managers, site_a)
    approval = pending(rfc, IT)
    delegate, absent = managers["itmanager_b"], managers["itmanager_a"]
    absence = Absence.objects.create(
        user=absent, delegate=delegate, starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1)
    )
    assert approvals.capacity(delegate, approval).on_behalf_of == absent
    # a delegate who does not hold the role anywhere is not made one by the absence
    Absence.objects.create(
        user=absent, delegate=managers["opsmanager"], starts_at=NOW, ends_at=NOW + timedelta(hours=1)
    )
    with pytest.raises(PermissionDenied):
        approvals.capacity(managers["opsmanager"], approval)
    signature = approve(delegate, approval)
    assert signature.on_behalf_of == absent
    assert signature.meaning == "approved as IT Manager of PLA on behalf of Itmanager_a"
    assert (
        AuditEvent.objects.get(action="approvals.signature.approved").after["on_behalf_of"] == "itmanager_a"
    )
    Absence.objects.filter(pk=absence.pk).update(ends_at=NOW)
    other = submitted(managers, site_a, "1.0.2")
    with pytest.raises(PermissionDenied):
        approvals.capacity(delegate, pending(other, IT))


def test_an_absence_of_someone_without_the_role_here_delegates_nothing(managers, site_a, site_b):
    """A5: the absent person must hold the role at the approval's site for the delegate to stand in."""
    rfc = submitted(managers, site_a)
    away = make_user("itmanager_b2", Role.IT_MANAGER, site=site_b)
    Absence.objects.create(
        user=away, delegate=managers["itmanager_b"], starts_at=NOW, ends_at=NOW + timedelta(hours=1)
    )
    with pytest.raises(PermissionDenied):
        approvals.capacity(managers["itmanager_b"], pending(rfc, IT))


# --- content_hash: what a signature is bound to (A6) -------------------------------------------------
def _expected_hash(rfc) -> str:
    rfc = Rfc.objects.select_related("release").get(pk=rfc.pk)
    content = {
        "number": rfc.number,
        "fields": rfc.snapshot(),
        "evidence": sorted(
            Evidence.objects.filter(rfc=rfc, superseded_by__isnull=True).values_list("sha256", flat=True)
        ),
        "release": {
            "product": rfc.release.product,
            "version": rfc.release.version,
            "sha256": rfc.release.artifact_sha256,
            "migration_sql": rfc.release.migration_sql,
            "undo_sql": rfc.release.undo_sql,
        },
    }
    text = json.dumps(content, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_content_hash_is_stable_across_versions(managers, site_a):
    """A6: signatures stored yesterday stay valid after an upgrade: the hash is the SHA-256 of the
    canonical JSON of the number, the fields, the live evidence and the release."""
    rfc = ready(managers, site_a)
    assert approvals.content_hash(rfc) == _expected_hash(rfc)
    assert approvals.content_hash(rfc) == approvals.content_hash(Rfc.objects.get(pk=rfc.pk))


def test_the_content_hash_covers_the_evidence(managers, site_a):
    """A6, R2: new evidence changes what is approved; a superseded file no longer counts."""
    rfc = ready(managers, site_a)
    before = approvals.content_hash(rfc)
    first = wf.add_evidence(managers["dev"], rfc, factories.log(text="run 1 PASS\n"), EvidenceKind.LOG)
    with_first = approvals.content_hash(rfc)
    assert with_first != before
    second = wf.add_evidence(
        managers["dev"], rfc, factories.log(text="run 2 PASS\n"), EvidenceKind.LOG, supersedes=first
    )
    replaced = approvals.content_hash(rfc)
    assert replaced not in (before, with_first)
    Evidence.objects.filter(pk=first.pk).delete()
    assert approvals.content_hash(rfc) == replaced  # the superseded file was not part of it
    Evidence.objects.filter(pk=second.pk).delete()
    assert approvals.content_hash(rfc) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product", "ERP"),
        ("version", "1.0.9"),
        ("artifact_sha256", "f" * 64),
        ("migration_sql", "ALTER TABLE labels ADD COLUMN width INT;"),
        ("undo_sql", "ALTER TABLE labels DROP COLUMN width;"),
    ],
)
def test_the_content_hash_covers_the_release(managers, site_a, field, value):
    """A6, X5: the artifact, its checksum and its SQL are part of what is approved."""
    rfc = ready(managers, site_a)
    before = approvals.content_hash(rfc)
    Release.objects.filter(pk=rfc.release_id).update(**{field: value})
    assert approvals.content_hash(rfc) != before


def test_the_content_hash_covers_the_number_and_the_fields(managers, site_a):
    """A6: the RFC's identity and every field the approver read."""
    rfc = ready(managers, site_a)
    before = approvals.content_hash(rfc)
    Rfc.objects.filter(pk=rfc.pk).update(number="RFC-2026-9999")
    renumbered = approvals.content_hash(rfc)
    assert renumbered != before
    Rfc.objects.filter(pk=rfc.pk).update(rollback_plan="Restore the VM snapshot")
    assert approvals.content_hash(rfc) not in (before, renumbered)


def test_signing_without_reason_or_channel_means_an_approval_from_the_portal(managers, site_a):
    """A5: a signature given in the portal, with no reason, says so."""
    rfc = submitted(managers, site_a)
    signature = wf.sign_verified(managers["itmanager"], pending(rfc, IT), "approve")
    assert (signature.reason, signature.via) == ("", "portal")


@pytest.mark.parametrize("what", ["step", "round"])
def test_an_approval_whose_step_or_round_is_over_cannot_be_signed(managers, site_a, what):
    """A2, A6: a pending approval counts only while its step is pending and its round open."""
    rfc = submitted(managers, site_a)
    approval = pending(rfc, IT)
    if what == "step":
        ApprovalStep.objects.filter(pk=approval.step_id).update(state=StepState.APPROVED)
    else:
        ApprovalRound.objects.filter(rfc=rfc).update(state=RoundState.WITHDRAWN)
    with pytest.raises(StateConflict, match="This approval is pending; nothing to sign."):
        approve(managers["itmanager"], approval)
    assert not Signature.objects.exists()


def test_a_signature_that_lands_a_moment_after_another_is_a_conflict(managers, site_a):
    """A6: one signature per approval; the second signer is told someone was quicker."""
    rfc = submitted(managers, site_a)
    approval = pending(rfc, IT)
    Signature.objects.create(
        approval=approval,
        rfc=rfc,
        signer=managers["itmanager_a"],
        printed_name="Itmanager_a",
        signed_at=NOW,
        decision="approve",
        meaning="approved as IT Manager of PLA",
        content_hash=approvals.content_hash(rfc),
    )
    with pytest.raises(StateConflict) as late:
        approve(managers["itmanager"], approval)
    assert str(late.value) == "Someone signed this approval a moment ago."
    assert Approval.objects.get(pk=approval.pk).state == ApprovalState.PENDING
