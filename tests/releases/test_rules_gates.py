"""The readiness gates (PRODUCT.md C5): each gate passes or fails with the reason the RFC page shows,
on the data as it is in the database, at the stages it belongs to (R1, R3, R5, R6, A1–A6, X5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from approvals import services as approvals
from approvals.models import Approval, ApprovalRound, ApprovalState, RoundPurpose, Signature
from core import clock
from environments.models import ProductVersion, Tier
from releases import gates
from releases.models import Impact, Release, Rfc, UatSignoff
from tests import factories
from tests.conftest import PASSWORD
from workflow import services as wf

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 7, 0, tzinfo=UTC)
BASE = ["Impact analysis", "Rollback plan", "Downtime matches class", "UAT sign-off", "Artifact checksum"]


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def draft(cast, site_a):
    return factories.ready_rfc(cast["dev"], cast["tester"], site_a)


def gate_of(rfc, name: str, stage: str = "submit") -> tuple[bool, str]:
    found = [g for g in gates.evaluate(rfc, stage) if g.name == name]
    assert len(found) == 1, found
    return found[0].passed, found[0].reason


def _impact(rfc, **fields) -> None:
    Impact.objects.filter(rfc=rfc).update(**fields)


def _release(rfc, **fields) -> None:
    Release.objects.filter(pk=rfc.release_id).update(**fields)


def _prod_runs(site, version: str) -> None:
    ProductVersion.objects.filter(environment__site=site, environment__tier=Tier.PROD, product="MES").update(
        version=version
    )


def test_a_ready_draft_passes_every_submission_gate_with_its_reason(draft):
    """C5: the checklist of a complete draft, gate by gate, as the RFC page shows it."""
    assert [
        {key: g.as_dict()[key] for key in ("name", "passed", "reason")}
        for g in gates.evaluate(draft, "submit")
        if g.name in BASE
    ] == [
        {"name": "Impact analysis", "passed": True, "reason": "PLA: 1 line(s), 1 module(s)"},
        {"name": "Rollback plan", "passed": True, "reason": "Rollback plan present."},
        {"name": "Downtime matches class", "passed": True, "reason": "Patch: no downtime declared."},
        {"name": "UAT sign-off", "passed": True, "reason": "Signed off in UAT: PLA by Tester."},
        {
            "name": "Artifact checksum",
            "passed": True,
            "reason": f"SHA-256 {draft.release.artifact_sha256[:12]}… recorded at upload.",
        },
    ]
    assert all(
        g.as_dict() | {"waived": False, "waived_by": "", "waived_at": None} == g.as_dict()
        for g in gates.evaluate(draft, "submit")
    )  # nothing is waived: the additive fields say so


def test_gates_belong_to_their_stages(draft):
    """C5, A1: the approvals gate is asked before scheduling and deploying (and in a review), not at
    submission; the content gates are asked at every stage but the review."""
    submit = [g.name for g in gates.evaluate(draft, "submit")]
    schedule = [g.name for g in gates.evaluate(draft, "schedule")]
    deploy = [g.name for g in gates.evaluate(draft, "deploy")]
    review = [g.name for g in gates.evaluate(draft, "review")]
    assert set(BASE) <= set(submit) and "Approvals complete" not in submit
    assert set(BASE) | {"Approvals complete"} <= set(schedule)
    assert set(BASE) | {"Approvals complete"} <= set(deploy)
    assert review == ["Approvals complete"]
    assert gates.evaluate(draft, "nowhere") == []


def test_gates_read_the_database_not_the_callers_copy(draft):
    """C5: a gate never passes on a stale copy: the caller's unsaved edits and stale fields don't count."""
    draft.rollback_plan = ""  # unsaved
    assert gate_of(draft, "Rollback plan") == (True, "Rollback plan present.")
    Rfc.objects.filter(pk=draft.pk).update(rollback_plan="   ")
    assert gate_of(draft, "Rollback plan") == (False, "The rollback plan is empty.")


def test_the_gates_read_the_rfc_once(draft, site_b, cast):
    """C5: the checklist is read in one go (the RFC page and the API show it on every view): the content
    gates ask the database nothing more, however many plants and sign-offs there are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Impact.objects.create(rfc=draft, site=site_b, lines=["Line 7"], modules=[])
    UatSignoff.objects.create(
        rfc=draft,
        site=site_b,
        release=draft.release,
        signed_by=cast["nobody"],
        signed_at=clock.now(),
        comment="ok",
    )
    fresh = gates._fresh(draft)
    with CaptureQueriesContext(connection) as queries:
        for check in (gates.impact_analysis, gates.rollback_plan, gates.uat_signoff, gates.artifact_checksum):
            assert check(fresh).passed
    assert queries.captured_queries == []


def test_failing_lists_only_the_failed_gates(draft):
    """C5: submission is refused naming the failing gates, and only those."""
    assert gates.failing(draft, "submit") == [] == gates.failing(draft)
    assert [g.name for g in gates.evaluate(draft)] == [g.name for g in gates.evaluate(draft, "submit")]
    Rfc.objects.filter(pk=draft.pk).update(rollback_plan="")
    _release(draft, artifact_sha256="")
    assert [g.name for g in gates.failing(draft, "submit")] == ["Rollback plan", "Artifact checksum"]
    assert [g.name for g in gates.failing(draft)] == ["Rollback plan", "Artifact checksum"]
    # Later stages fail closed as well: without an artifact checksum there is no rehearsal of it.
    failing = {g.name for g in gates.failing(draft, "schedule")}
    assert {"Approvals complete", "Rollback rehearsed", "Promotion order"} <= failing


# --- Impact analysis (R1) ---------------------------------------------------------------------------
def test_impact_analysis_needs_a_site_and_lines_or_modules(cast, draft, site_b):
    """R1: which sites, lines and modules are affected."""
    _impact(draft, lines=[], modules=[])
    assert gate_of(draft, "Impact analysis") == (False, "No affected lines or modules for PLA.")
    _impact(draft, lines=["Line 2", "Line 3"], modules=[])
    assert gate_of(draft, "Impact analysis") == (True, "PLA: 2 line(s), 0 module(s)")
    _impact(draft, lines=[], modules=["Labelling"])
    assert gate_of(draft, "Impact analysis") == (True, "PLA: 0 line(s), 1 module(s)")
    Impact.objects.create(rfc=draft, site=site_b, lines=["Line 7"], modules=["Scales", "Labels"])
    assert gate_of(draft, "Impact analysis") == (
        True,
        "PLA: 0 line(s), 1 module(s); PLB: 1 line(s), 2 module(s)",
    )
    Impact.objects.filter(rfc=draft).update(lines=[], modules=[])
    assert gate_of(draft, "Impact analysis") == (False, "No affected lines or modules for PLA, PLB.")
    Impact.objects.filter(rfc=draft).delete()
    assert gate_of(draft, "Impact analysis") == (False, "No target site is named.")


# --- Rollback plan (R3, X6) -------------------------------------------------------------------------
def test_rollback_plan_and_the_undo_script(draft):
    """R3, X6: a rollback plan, and an undo script for every SQL migration."""
    _release(draft, migration_sql="ALTER TABLE labels ADD COLUMN width INT;", undo_sql="")
    assert gate_of(draft, "Rollback plan") == (
        False,
        "The release has an SQL migration but no undo script.",
    )
    _release(draft, undo_sql="  \n ")
    assert gate_of(draft, "Rollback plan")[0] is False
    _release(draft, undo_sql="ALTER TABLE labels DROP COLUMN width;")
    assert gate_of(draft, "Rollback plan") == (True, "Rollback plan present with the release's undo script.")
    _release(draft, migration_sql="  ", undo_sql="")
    assert gate_of(draft, "Rollback plan") == (True, "Rollback plan present.")
    Rfc.objects.filter(pk=draft.pk).update(rollback_plan="\n\t ")
    assert gate_of(draft, "Rollback plan") == (False, "The rollback plan is empty.")


# --- Downtime matches class (R4, R5) ----------------------------------------------------------------
@pytest.mark.req("R4", "R5")
def test_downtime_of_a_patch_and_a_minor_change(cast, site_a):
    """R5: a patch is invisible, a minor change has no downtime; what is declared is shown."""
    patch = factories.ready_rfc(cast["dev"], cast["tester"], site_a, estimated_downtime_minutes=5)
    assert gate_of(patch, "Downtime matches class") == (True, "Patch: 5 min downtime declared.")
    minor = factories.ready_rfc(cast["dev"], cast["tester"], site_a, version="1.1.0")
    assert gate_of(minor, "Downtime matches class") == (True, "Minor (feature): no downtime declared.")


@pytest.mark.req("R4", "R5")
def test_a_major_change_needs_downtime_and_retraining(cast, site_a):
    """R5: a major change means downtime and operator retraining."""
    major = factories.ready_rfc(
        cast["dev"],
        cast["tester"],
        site_a,
        version="2.0.0",
        estimated_downtime_minutes=10,
        retraining_note="Shift leads briefed.",
    )
    assert gate_of(major, "Downtime matches class") == (True, "Major: 10 min downtime, retraining planned.")
    Rfc.objects.filter(pk=major.pk).update(retraining_note="   ")
    assert gate_of(major, "Downtime matches class") == (
        False,
        "A major change needs operators retrained: say how.",
    )
    Rfc.objects.filter(pk=major.pk).update(estimated_downtime_minutes=1, retraining_note="Briefed.")
    assert gate_of(major, "Downtime matches class") == (True, "Major: 1 min downtime, retraining planned.")
    Rfc.objects.filter(pk=major.pk).update(estimated_downtime_minutes=0, retraining_note="Briefed.")
    assert gate_of(major, "Downtime matches class") == (
        False,
        "A major change means downtime: estimate it (minutes above 0).",
    )


def test_the_class_follows_what_runs_in_prod_now(cast, site_a, draft):
    """R5: the class is taken against PROD as it runs today; a version PROD is past is refused."""
    _prod_runs(site_a, "0.9.0")  # 1.0.1 is now a major step with no downtime declared
    assert gate_of(draft, "Downtime matches class") == (
        False,
        "A major change means downtime: estimate it (minutes above 0). "
        "A major change needs operators retrained: say how.",
    )
    _prod_runs(site_a, "1.2.0")
    passed, reason = gate_of(draft, "Downtime matches class")
    assert passed is False and reason.startswith("PLA: ")
    Impact.objects.filter(rfc=draft).delete()
    assert gate_of(draft, "Downtime matches class") == (False, "Name at least one target site.")


# --- UAT sign-off (R6, R9) --------------------------------------------------------------------------
def test_a_voided_signoff_does_not_count(draft):
    """R6: only a live sign-off counts; a voided one (the release or the sites changed) is no sign-off."""
    UatSignoff.objects.filter(rfc=draft).update(voided_at=clock.now(), void_reason="release changed")
    assert gate_of(draft, "UAT sign-off") == (False, "No UAT sign-off with evidence for PLA.")


def test_a_signoff_of_another_release_does_not_count(cast, draft):
    """R6, X5: the sign-off is for the release the RFC carries now."""
    other = factories.release(cast["dev"], "1.0.2")
    Rfc.objects.filter(pk=draft.pk).update(release=other)
    assert gate_of(draft, "UAT sign-off") == (False, "No UAT sign-off with evidence for PLA.")


def test_every_target_site_signs_off(cast, draft, site_b):
    """R6: an RFC for two plants needs a sign-off from each; the missing one is named."""
    Impact.objects.create(rfc=draft, site=site_b, lines=["Line 7"], modules=[])
    assert gate_of(draft, "UAT sign-off") == (False, "No UAT sign-off with evidence for PLB.")
    UatSignoff.objects.create(
        rfc=draft,
        site=site_b,
        release=draft.release,
        signed_by=cast["nobody"],
        signed_at=clock.now(),
        comment="ok",
    )
    assert gate_of(draft, "UAT sign-off") == (True, "Signed off in UAT: PLA by Tester, PLB by Nobody.")
    cast["nobody"].first_name = ""
    cast["nobody"].save()
    assert gate_of(draft, "UAT sign-off")[1] == "Signed off in UAT: PLA by Tester, PLB by nobody."


def test_every_missing_signoff_is_named(draft, site_b):
    """R6: two plants without a live sign-off are both named."""
    Impact.objects.create(rfc=draft, site=site_b, lines=["Line 7"], modules=[])
    UatSignoff.objects.filter(rfc=draft).update(voided_at=clock.now())
    assert gate_of(draft, "UAT sign-off") == (False, "No UAT sign-off with evidence for PLA, PLB.")


def test_no_site_and_no_signoff(draft):
    """R6: with no target site there is nothing signed off either."""
    Impact.objects.filter(rfc=draft).delete()
    UatSignoff.objects.filter(rfc=draft).delete()
    assert gate_of(draft, "UAT sign-off") == (False, "No UAT sign-off yet.")


# --- Artifact checksum (X5) -------------------------------------------------------------------------
def test_the_artifact_needs_its_sha256(draft):
    """X5: the same artifact, identified by its SHA-256 recorded at upload, goes to every tier."""
    _release(draft, artifact_sha256="")
    assert gate_of(draft, "Artifact checksum") == (
        False,
        "The release has no artifact with a recorded SHA-256.",
    )
    _release(draft, artifact_sha256="a" * 63)
    assert gate_of(draft, "Artifact checksum")[0] is False
    _release(draft, artifact_sha256="0123456789ab" + "c" * 52)
    assert gate_of(draft, "Artifact checksum") == (True, "SHA-256 0123456789ab… recorded at upload.")


# --- Approvals complete (A1–A6) ---------------------------------------------------------------------
def test_the_approvals_gate_follows_the_last_round(people, site_a):
    """A1, A6: not submitted, waiting for a step, approved, then void after a change."""
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.1.0")
    assert gate_of(rfc, "Approvals complete", "schedule") == (False, "Not submitted for approval yet.")
    wf.submit(people["dev"], rfc)
    assert gate_of(rfc, "Approvals complete", "schedule") == (
        False,
        "Approval round 1 is open: waiting for IT Manager.",
    )
    for role, who in (("it_manager", "itmanager"), ("operations_manager", "opsmanager")):
        approval = Approval.objects.get(rfc=rfc, role=role, state=ApprovalState.PENDING)
        wf.sign(people[who], approval, "approve", PASSWORD)
    assert gate_of(rfc, "Approvals complete", "deploy") == (True, "Approved in round 1 (2 signatures).")
    Signature.objects.filter(rfc=rfc).update(voided_at=clock.now())
    assert gate_of(rfc, "Approvals complete", "deploy") == (
        False,
        "The RFC changed after it was approved: its signatures are void.",
    )


def test_the_approvals_gate_is_void_when_the_content_changed(people, site_a):
    """A6: a signature binds the exact content; content changed behind it means no approval."""
    rfc = factories.sign_chain(people, factories.ready_rfc(people["dev"], people["tester"], site_a))
    assert gate_of(rfc, "Approvals complete", "schedule")[0] is True
    Rfc.objects.filter(pk=rfc.pk).update(title="Something else entirely")
    assert gate_of(rfc, "Approvals complete", "schedule") == (
        False,
        "The RFC changed after it was approved: its signatures are void.",
    )


def test_a_review_round_is_not_the_approval(people, site_a):
    """W6: the post-implementation review of an emergency change is not its approval round."""
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    rnd = approvals.open_round(rfc, people["dev"], purpose=RoundPurpose.REVIEW)
    assert ApprovalRound.objects.filter(rfc=rfc).count() == 1 and rnd.is_review
    assert gate_of(rfc, "Approvals complete", "schedule") == (False, "Not submitted for approval yet.")


def test_a_rejected_round_names_no_waiting_step(people, site_a):
    """A6: after a rejection the gate says the round is rejected, with no step to wait for."""
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)
    wf.sign(people["itmanager"], approval, "reject", PASSWORD, reason="No rollback test")
    assert gate_of(rfc, "Approvals complete", "schedule") == (False, "Approval round 1 is rejected.")
    wf.submit(people["dev"], rfc)
    assert gate_of(rfc, "Approvals complete", "schedule") == (
        False,
        "Approval round 2 is open: waiting for IT Manager.",
    )
