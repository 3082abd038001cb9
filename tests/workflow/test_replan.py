"""Re-planning after a failure (issue 15 item 7): once the attempt's review is done, the RFC page
offers the next steps — attach a fixed release (back to draft with its history, the signatures void,
a new round at the next submission), reschedule (back to approved, when the cause was the window or
the plant), or close. The home page keeps ended changes in sight until they are closed."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from approvals.models import ApprovalRound, Signature
from audit.models import AuditEvent
from core.errors import RuleViolation
from deployments.states import DeploymentState as S
from deployments.states import move
from notify.models import Notice
from releases import gates
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import api_client_for, client_for
from workflow import reviews
from workflow import services as wf
from workflow.models import Review

ROLLED_BACK = [S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK]


def deployed(people, rfc, site, path):
    """The approved RFC booked in PROD and its deployment taken along `path`."""
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SCHEDULED)
    deployment = factories.booking(rfc, site, people["releasemgr"])
    for target in path:
        move(deployment, target, outcome=f"ended {target}")
    return Rfc.objects.get(pk=rfc.pk)


@pytest.fixture
def rolled_back(people, site_a):
    rfc = factories.sign_chain(people, factories.ready_rfc(people["dev"], people["tester"], site_a))
    return deployed(people, rfc, site_a, ROLLED_BACK)


def reviewed(user, rfc, code="rolled_back"):
    reviews.complete(user, rfc, close_code=code, what_happened="The smoke test failed at T+15.")
    return Rfc.objects.get(pk=rfc.pk)


def test_a_fixed_release_takes_the_rfc_back_to_draft_and_through_a_new_round(people, site_a, rolled_back):
    rfc, dev = rolled_back, people["dev"]
    fixed = factories.release(dev, "1.0.2")
    with pytest.raises(RuleViolation, match="Complete the post-implementation review"):
        wf.transition(dev, rfc, "rework", "Fixed the timeout", data={"release": fixed})
    rfc = reviewed(dev, rfc)
    with pytest.raises(ValidationError, match="the build that failed"):
        wf.transition(dev, rfc, "rework", "Same again", data={"release": rfc.release})
    with pytest.raises(ValidationError, match="Choose a release of MES"):
        wf.transition(
            dev, rfc, "rework", "x", data={"release": factories.release(dev, "2.0.0", product="ERP")}
        )
    with pytest.raises(ValidationError, match="Choose the fixed release"):
        wf.transition(dev, rfc, "rework", "x")
    with pytest.raises(PermissionDenied):
        wf.transition(people["releasemgr"], rfc, "rework", "x", data={"release": fixed})
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.ROLLED_BACK

    rfc = wf.transition(dev, rfc, "rework", "Timeout raised to 30 s", data={"release": fixed})
    rfc.refresh_from_db()
    assert rfc.state == RfcState.DRAFT and rfc.release == fixed
    assert not Signature.objects.filter(rfc=rfc, voided_at__isnull=True).exists()
    assert not rfc.signoffs.filter(voided_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="releases.rfc.reworked")
    assert event.after == {"state": "draft", "release": "MES 1.0.2", "replaces": "MES 1.0.1"}
    assert event.reason == "Timeout raised to 30 s"
    told = set(Notice.objects.filter(kind="rfc.replanned").values_list("user__username", flat=True))
    assert {"releasemgr"} <= told and "dev" not in told  # the actor is not told of their own act

    # The fixed release goes the whole road again: proven, signed off, a second round approves it.
    factories.promote(rfc, site_a)
    wf.sign_off_uat(people["tester"], rfc, site_a, "Printed 50 labels with 1.0.2.", [factories.png()])
    rfc = factories.sign_chain(people, rfc)
    assert list(ApprovalRound.objects.filter(rfc=rfc).values_list("number", "state")) == [
        (1, "approved"),
        (2, "approved"),
    ]
    rfc = deployed(people, rfc, site_a, [S.RUNNING, S.SUCCEEDED])
    assert rfc.state == RfcState.DEPLOYED
    latest = reviews.review_of(rfc)
    assert Review.objects.filter(rfc=rfc).count() == 2 and latest.outcome == "deployed" and not latest.done


def test_reschedule_keeps_the_signatures_when_the_cause_was_the_plant(people, site_a, rolled_back):
    rfc = reviewed(people["releasemgr"], rolled_back)
    with pytest.raises(ValidationError):
        wf.transition(people["releasemgr"], rfc, "reschedule", " ")
    with pytest.raises(PermissionDenied):
        wf.transition(people["tester"], rfc, "reschedule", "Line 2 was down")
    rfc = wf.transition(people["releasemgr"], rfc, "reschedule", "Line 2 PLC was down during the window")
    assert rfc.state == RfcState.APPROVED
    assert [g for g in gates.evaluate(rfc, "schedule") if g.name == "Approvals complete"][0].passed
    assert AuditEvent.objects.filter(action="releases.rfc.rescheduled", actor_name="releasemgr").exists()


def test_failed_deployment_offers_the_same_next_steps(people, site_a):
    rfc = factories.sign_chain(people, factories.ready_rfc(people["dev"], people["tester"], site_a))
    rfc = deployed(people, rfc, site_a, [S.RUNNING, S.ROLLING_BACK, S.FAILED])
    assert rfc.state == RfcState.FAILED
    assert "reschedule" in {t.name for t in wf.available_transitions(people["releasemgr"], rfc)}
    reviewed(people["dev"], rfc, "failed")
    rfc = wf.transition(people["dev"], rfc, "reschedule", "Window too short for the data migration")
    assert rfc.state == RfcState.APPROVED


def test_the_rfc_page_and_home_page_lead_through_the_next_steps(people, site_a, rolled_back):
    rfc, client = rolled_back, client_for(people["dev"])
    home = client.get("/").content.decode()
    assert 'data-testid="home-ended"' in home and rfc.number in home and "review due" in home
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-testid="next-steps"' in page and "Complete the review above first" in page
    client.post(
        reverse("releases:review", args=[rfc.uuid]),
        {"close_code": "rolled_back", "what_happened": "The smoke test failed at T+15."},
    )
    assert "reviewed: re-plan or close" in client.get("/").content.decode()
    fixed = factories.release(people["dev"], "1.0.2")
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert f'<option value="{fixed.uuid}">MES 1.0.2</option>' in page and "Reschedule" in page
    bad = client.post(
        reverse("releases:transition", args=[rfc.uuid, "rework"]), {"release": "not-a-uuid", "reason": "fix"}
    )
    assert bad.status_code == 400 and "Choose the fixed release" in bad.content.decode()
    done = client.post(
        reverse("releases:transition", args=[rfc.uuid, "rework"]),
        {"release": str(fixed.uuid), "reason": "fix"},
    )
    assert done.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.DRAFT
    assert 'data-testid="home-ended"' not in client.get("/").content.decode()


def test_rework_through_the_api(people, site_a, rolled_back):
    rfc = reviewed(people["dev"], rolled_back)
    fixed = factories.release(people["dev"], "1.0.2")
    api = api_client_for(people["dev"])
    url = f"/api/v1/rfcs/{rfc.uuid}/transition/"
    missing = api.post(url, {"name": "rework", "reason": "fix"}, format="json")
    assert missing.status_code == 400 and "release" in str(missing.json())
    ok = api.post(url, {"name": "rework", "reason": "fix", "release": str(fixed.uuid)}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["state"] == "draft" and Rfc.objects.get(pk=rfc.pk).release == fixed
