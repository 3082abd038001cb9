"""Approval chains and electronic signatures (PRODUCT.md A1–A6)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from approvals import mail, services
from approvals.models import (
    Approval,
    ApprovalPolicy,
    ApprovalRound,
    ApprovalState,
    PolicyStep,
    RoundState,
    Signature,
    StepRule,
    StepState,
)
from audit.models import AuditEvent
from core import clock
from core.errors import StateConflict
from core.roles import Role
from releases import gates
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, make_user
from workflow import services as wf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail_at_once(monkeypatch):
    """These tests run inside one transaction that never commits: send each mail at once instead of
    on commit (tests/approvals/test_approvals.py::test_a_rolled_back_send_mails_nothing covers the commit rule)."""
    monkeypatch.setattr("approvals.mail.after_commit", lambda send: send())


@pytest.fixture
def managers(people, site_b):
    return {**people, "itmanager_b": make_user("itmanager_b", Role.IT_MANAGER, site=site_b)}


def submitted(people, site, version="1.0.1", **fields):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site, version=version, **fields)
    return wf.submit(people["dev"], rfc)


def chain(rfc) -> list[tuple[list[str], str]]:
    rnd = ApprovalRound.objects.get(rfc=rfc, state=RoundState.OPEN)
    return [(step.roles, step.rule) for step in rnd.steps.order_by("order")]


def pending(rfc, role) -> Approval:
    return Approval.objects.get(rfc=rfc, role=role, state=ApprovalState.PENDING)


def approve(user, rfc, role, **kwargs) -> Signature:
    return wf.sign(user, pending(rfc, role), "approve", PASSWORD, **kwargs)


# --- Policies (A1–A4) ---------------------------------------------------------------------------
def test_patch_needs_the_it_manager(managers, site_a):
    rfc = submitted(managers, site_a, "1.0.1")
    assert rfc.change_class == "patch"
    assert chain(rfc) == [(["it_manager"], "all")]


def test_minor_needs_it_then_operations(managers, site_a):
    rfc = submitted(managers, site_a, "1.1.0")
    assert chain(rfc) == [(["it_manager"], "all"), (["operations_manager"], "all")]


def test_major_ends_with_cio_and_plant_director_together(managers, site_a):
    rfc = submitted(
        managers, site_a, "2.0.0", estimated_downtime_minutes=30, retraining_note="Brief shift leads."
    )
    assert chain(rfc) == [
        (["it_manager"], "all"),
        (["operations_manager"], "all"),
        (["cio", "plant_director"], "all"),
    ]


def test_high_risk_patch_gets_the_business_step(managers, site_a):
    """A4: technical and business sign-off, even for a patch."""
    rfc = submitted(managers, site_a, "1.0.1", high_risk=True)
    assert chain(rfc) == [(["it_manager"], "all"), (["operations_manager"], "all")]
    assert ApprovalRound.objects.get(rfc=rfc).steps.get(order=2).note.startswith("High-risk")


def test_custom_policy_with_an_any_step(managers, site_a):
    policy = ApprovalPolicy.objects.get(change_class="patch")
    PolicyStep.objects.create(policy=policy, order=2, roles=["cio", "plant_director"], rule=StepRule.ANY)
    rfc = submitted(managers, site_a, "1.0.1")
    assert chain(rfc) == [(["it_manager"], "all"), (["cio", "plant_director"], "any")]
    approve(managers["itmanager"], rfc, "it_manager")
    approve(managers["plantdirector"], rfc, "plant_director")
    rfc.refresh_from_db()
    assert rfc.state == RfcState.APPROVED
    assert Approval.objects.get(rfc=rfc, role="cio").state == ApprovalState.NOT_NEEDED


def test_policy_steps_validate_roles():
    step = PolicyStep(policy=ApprovalPolicy.objects.get(change_class="patch"), order=9, roles=["wizard"])
    with pytest.raises(ValidationError, match="Unknown role"):
        step.full_clean()


# --- The flow ------------------------------------------------------------------------------------
def test_minor_rfc_goes_through_two_signatures(managers, site_a, mailoutbox):
    rfc = submitted(managers, site_a, "1.1.0")
    assert rfc.state == RfcState.SUBMITTED
    assert mail.send_notifications() >= 1
    to = {m.to[0] for m in mailoutbox}
    assert "itmanager@plant.test" in to and "opsmanager@plant.test" not in to
    assert "dev@plant.test" not in to  # the author is never asked

    first = approve(managers["itmanager"], rfc, "it_manager")
    assert first.meaning == f"approved as IT Manager of {site_a.code}"
    assert first.printed_name == "Itmanager" and first.content_hash == services.content_hash(rfc)
    rfc.refresh_from_db()
    assert rfc.state == RfcState.IN_APPROVAL
    assert pending(rfc, "operations_manager").step.state == StepState.PENDING
    mailoutbox.clear()
    mail.send_notifications()
    assert {m.to[0] for m in mailoutbox} == {"opsmanager@plant.test"}

    approve(managers["opsmanager"], rfc, "operations_manager")
    rfc.refresh_from_db()
    assert rfc.state == RfcState.APPROVED
    assert ApprovalRound.objects.get(rfc=rfc).state == RoundState.APPROVED
    gate = {g.name: g for g in gates.evaluate(rfc, "schedule")}["Approvals complete"]
    assert gate.passed, gate.reason
    actions = list(AuditEvent.objects.filter(object_id=rfc.number).values_list("action", flat=True))
    assert actions.count("approvals.signature.approved") == 2
    assert "releases.rfc.approved" in actions


def test_wrong_password_records_nothing_but_the_refusal(managers, site_a):
    rfc = submitted(managers, site_a)
    with pytest.raises(PermissionDenied, match="password"):
        wf.sign(managers["itmanager"], pending(rfc, "it_manager"), "approve", "guess")
    with pytest.raises(PermissionDenied, match="password"):
        wf.sign(managers["itmanager"], pending(rfc, "it_manager"), "approve", "")
    assert not Signature.objects.exists()
    assert AuditEvent.objects.filter(action="approvals.signature.refused").count() == 2
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SUBMITTED


def test_author_cannot_approve_even_holding_the_role(managers, site_a):
    """A6: separation of duties."""
    author = make_user("devlead", Role.DEVELOPER, Role.IT_MANAGER)
    rfc = factories.ready_rfc(author, managers["tester"], site_a)
    wf.submit(author, rfc)
    with pytest.raises(PermissionDenied, match="wrote this RFC"):
        approve(author, rfc, "it_manager")
    assert not Signature.objects.exists()
    # FAULTS 7: the refusal is in the trail, with its reason (written after the signing rolled back).
    event = AuditEvent.objects.get(action="approvals.signature.refused")
    assert event.actor_name == "devlead" and "separation of duties" in event.reason


def test_uat_signer_cannot_approve(managers, site_a):
    tester_it = make_user("tester_it", Role.KEY_USER, Role.IT_MANAGER)
    rfc = factories.ready_rfc(managers["dev"], tester_it, site_a)
    wf.submit(managers["dev"], rfc)
    with pytest.raises(PermissionDenied, match="signed off"):
        approve(tester_it, rfc, "it_manager")


def test_site_scoped_manager_cannot_approve_another_site(managers, site_a):
    rfc = submitted(managers, site_a)
    with pytest.raises(PermissionDenied, match="Only a IT Manager of PLA|Only a"):
        approve(managers["itmanager_b"], rfc, "it_manager")
    approve(managers["itmanager_a"], rfc, "it_manager")
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED


def test_rejection_needs_a_reason_and_returns_to_draft(managers, site_a):
    rfc = submitted(managers, site_a, "1.1.0")
    approval = pending(rfc, "it_manager")
    with pytest.raises(ValidationError):
        wf.sign(managers["itmanager"], approval, "reject", PASSWORD, reason="  ")
    signature = wf.sign(managers["itmanager"], approval, "reject", PASSWORD, reason="No load test")
    assert signature.meaning.startswith("rejected as IT Manager")
    rfc.refresh_from_db()
    assert rfc.state == RfcState.DRAFT
    rnd = ApprovalRound.objects.get(rfc=rfc)
    assert rnd.state == RoundState.REJECTED
    assert Approval.objects.get(rfc=rfc, role="operations_manager").state == ApprovalState.CLOSED
    with pytest.raises(StateConflict):
        approve(managers["opsmanager"], rfc, "operations_manager") if Approval.objects.filter(
            rfc=rfc, state=ApprovalState.PENDING
        ).exists() else wf.sign(
            managers["opsmanager"],
            Approval.objects.get(rfc=rfc, role="operations_manager"),
            "approve",
            PASSWORD,
        )


def test_an_edit_after_approval_voids_the_signatures(managers, site_a):
    """A6 / §11.70: a signature is bound to the content it approved."""
    rfc = submitted(managers, site_a)
    approve(managers["itmanager"], rfc, "it_manager")
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    wf.transition(managers["dev"], rfc, "withdraw", reason="Typo in the rollback plan")
    wf.update_rfc(managers["dev"], Rfc.objects.get(pk=rfc.pk), rollback_plan="Redeploy 1.0.0 only")
    signature = Signature.objects.get(rfc=rfc)
    assert signature.voided_at is not None and "changed" in signature.void_reason
    passed, reason = services.approvals_complete(rfc)
    assert not passed
    resubmitted = wf.submit(managers["dev"], Rfc.objects.get(pk=rfc.pk))
    assert ApprovalRound.objects.filter(rfc=rfc).count() == 2
    assert resubmitted.state == RfcState.SUBMITTED
    assert not services.approvals_complete(rfc)[0]


def test_stale_content_cannot_be_signed(managers, site_a):
    rfc = submitted(managers, site_a)
    approval = pending(rfc, "it_manager")
    with pytest.raises(StateConflict, match="changed"):
        wf.sign(managers["itmanager"], approval, "approve", PASSWORD, expected_hash="0" * 64)
    assert not Signature.objects.exists()


def test_a_second_signature_on_the_same_approval_is_a_conflict(managers, site_a):
    rfc = submitted(managers, site_a)
    approval = pending(rfc, "it_manager")
    wf.sign(managers["itmanager"], approval, "approve", PASSWORD)
    with pytest.raises(StateConflict):
        wf.sign(managers["itmanager_a"], approval, "approve", PASSWORD)
    assert Signature.objects.count() == 1


def test_the_losing_signature_attempt_is_audited_too(managers, site_a):
    """FAULTS 8: of two approvals at the same instant one signs, the other gets a 409 — and both
    attempts are in the audit trail (the loser's event outlives its rolled-back transaction)."""
    rfc = submitted(managers, site_a)
    approval = pending(rfc, "it_manager")
    wf.sign(managers["itmanager"], approval, "approve", PASSWORD)
    with pytest.raises(StateConflict):
        wf.sign(managers["itmanager_a"], approval, "approve", PASSWORD, via="email")
    event = AuditEvent.objects.get(action="approvals.signature.conflict")
    assert event.actor_name == "itmanager_a" and event.object_id == rfc.number
    assert event.after == {"decision": "approve", "via": "email"} and "nothing to sign" in event.reason
    assert AuditEvent.objects.filter(action="approvals.signature.approved").count() == 1


# --- Delegation ----------------------------------------------------------------------
def test_delegate_signs_on_behalf_of_an_absent_approver(managers, site_a, mailoutbox):
    away, delegate = managers["itmanager_a"], managers["itmanager_b"]
    now = clock.now()
    with pytest.raises(ValidationError, match="holds none"):
        services.set_absence(away, delegate=managers["dev"], starts_at=now, ends_at=now + timedelta(days=3))
    services.set_absence(
        away,
        delegate=delegate,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=3),
        reason="Holiday",
    )
    # Only the site's own manager and the delegate may sign: no global IT manager in this plant.
    managers["itmanager"].groups.clear()
    rfc = submitted(managers, site_a)
    mail.send_notifications()
    delegate_mail = next(m for m in mailoutbox if m.to == ["itmanager_b@plant.test"])
    assert "on behalf of" in delegate_mail.body
    signature = approve(delegate, rfc, "it_manager")
    assert signature.on_behalf_of == away
    assert signature.meaning == f"approved as IT Manager of {site_a.code} on behalf of Itmanager_a"
    event = AuditEvent.objects.get(action="approvals.signature.approved")
    assert event.after["on_behalf_of"] == "itmanager_a"


def test_delegation_ends_with_the_absence(managers, site_a):
    now = clock.now()
    services.set_absence(
        managers["itmanager_a"],
        delegate=managers["itmanager_b"],
        starts_at=now,
        ends_at=now + timedelta(hours=2),
    )
    rfc = submitted(managers, site_a)
    with time_machine.travel(now + timedelta(hours=3)), pytest.raises(PermissionDenied):
        approve(managers["itmanager_b"], rfc, "it_manager")


# --- Reminders and escalation ----------------------------------------------------
def test_reminder_and_escalation_are_sent_once(managers, site_a, mailoutbox):
    start = clock.now()
    with time_machine.travel(start, tick=False):
        rfc = submitted(managers, site_a)
        mail.send_notifications()
    mailoutbox.clear()
    with time_machine.travel(start + timedelta(hours=23), tick=False):
        assert mail.sweep() == {"notified": 0, "reminded": 0, "escalated": 0}
    with time_machine.travel(start + timedelta(hours=25), tick=False):
        first = mail.sweep()
        second = mail.sweep()  # a second beat firing the same sweep
    assert first["reminded"] >= 1 and second == {"notified": 0, "reminded": 0, "escalated": 0}
    reminders = [m for m in mailoutbox if m.subject.startswith("[Reminder]")]
    assert len(reminders) == first["reminded"]
    with time_machine.travel(start + timedelta(hours=49), tick=False):
        assert mail.sweep()["escalated"] == 1
        assert mail.sweep()["escalated"] == 0
    escalations = [m for m in mailoutbox if m.subject.startswith("[Escalation]")]
    assert [m.to for m in escalations] == [["releasemgr@plant.test"]]
    assert rfc.number in escalations[0].subject


# --- Two approvers at the same instant (PostgreSQL) -----------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_racing_leave_one_signature(managers, site_a):
    rfc = submitted(managers, site_a)
    approval = pending(rfc, "it_manager")
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def race(name):
        try:
            barrier.wait()
            results[name] = wf.sign(managers[name], approval, "approve", PASSWORD)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(name,)) for name in ("itmanager", "itmanager_a")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    outcomes = sorted(type(value).__name__ for value in results.values())
    assert outcomes == ["Signature", "StateConflict"], results
    assert Signature.objects.filter(rfc=rfc).count() == 1
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_beats_sweeping_at_once_send_each_reminder_once(managers, site_a, mailoutbox):
    """CELERY.md: two beats. Rows are claimed with SKIP LOCKED and marked in the same transaction."""
    start = clock.now()
    with time_machine.travel(start, tick=False):
        rfc = submitted(managers, site_a)
        mail.send_notifications()
    mailoutbox.clear()
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def beat():
        try:
            barrier.wait()
            counts.append(mail.send_reminders())
        finally:
            connection.close()

    with time_machine.travel(start + timedelta(hours=25), tick=False):
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    recipients = len(mail.recipients(Approval.objects.get(rfc=rfc)))
    assert sorted(counts) == [0, recipients]
    assert len([m for m in mailoutbox if m.subject.startswith("[Reminder]")]) == recipients
    assert AuditEvent.objects.filter(action="approvals.request.reminded").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_send_mails_nothing(managers, site_a, mailoutbox, monkeypatch):
    """A mail leaves only when the transaction that issued its link commits: never a dead link."""
    from django.db import transaction

    monkeypatch.setattr("approvals.mail.after_commit", transaction.on_commit)  # the real rule
    submitted(managers, site_a)
    mailoutbox.clear()
    Approval.objects.filter(state=ApprovalState.PENDING).update(notify_due=True)
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_notifications()
        raise RuntimeError("the database fails after the mail was prepared")
    assert mailoutbox == []
    sent = mail.send_notifications()
    assert sent >= 1 and len(mailoutbox) == sent


def test_the_chain_is_read_in_four_queries_in_its_order(managers, site_a, django_assert_num_queries):
    """The chain an RFC page and the evidence pack show (A6): the last round first, its steps in order,
    approvals by site and role, signatures as signed, voided ones kept; four queries however long the
    chain, one when none has started."""
    rfc = factories.ready_rfc(managers["dev"], managers["tester"], site_a, change_class="minor")
    with django_assert_num_queries(1):
        assert services.rounds_of(rfc) == []
    wf.submit(managers["dev"], rfc)
    approve(managers["itmanager"], rfc, "it_manager")  # the first of two steps
    wf.transition(managers["dev"], Rfc.objects.get(pk=rfc.pk), "withdraw", reason="Typo in the rollback plan")
    wf.update_rfc(managers["dev"], Rfc.objects.get(pk=rfc.pk), rollback_plan="Redeploy 1.0.0 only")
    wf.submit(managers["dev"], Rfc.objects.get(pk=rfc.pk))
    with django_assert_num_queries(4):
        rounds = services.rounds_of(rfc)
    assert [r.number for r in rounds] == [2, 1]
    for rnd in rounds:
        assert [s.pk for s in rnd.step_list] == list(rnd.steps.order_by("order").values_list("pk", flat=True))
        for step in rnd.step_list:
            assert [(a.site.code, a.role) for a in step.approval_list] == sorted(
                step.approvals.values_list("site__code", "role")
            )
            for approval in step.approval_list:
                assert approval.signature_list == list(approval.signatures.order_by("signed_at", "pk"))
    signed = [sig for step in rounds[1].step_list for a in step.approval_list for sig in a.signature_list]
    assert len(signed) == 1 and signed[0].voided_at is not None  # the edit voided it; still shown
    assert rounds[1].step_list[0].approval_list[0].signature_list == signed
    with django_assert_num_queries(4):
        assert [r.number for r in services.rounds_of(rfc, latest=True)] == [2]
