"""A post-implementation review for every change (issue 15 item 6; ITIL, Annex 11 §10): it opens when
the PROD deployments end, the author or a release manager completes it, and the RFC closes only then."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import RuleViolation
from core.roles import Role
from deployments.states import DeploymentState as S
from deployments.states import move
from notify.models import Notice
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import client_for, make_user
from workflow import reviews
from workflow import services as wf
from workflow.models import Review


def ended(cast, site, path):
    rfc = factories.rfc(cast["dev"], site)
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SCHEDULED)
    deployment = factories.booking(rfc, site, cast["releasemgr"])
    for target in path:
        move(deployment, target, outcome=f"ended {target}")
    return Rfc.objects.get(pk=rfc.pk)


@pytest.mark.parametrize(
    "path,state,suggested",
    [
        ([S.RUNNING, S.SUCCEEDED], "deployed", "successful"),
        ([S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK], "rolled_back", "rolled_back"),
        ([S.RUNNING, S.ROLLING_BACK, S.FAILED], "failed", "failed"),
    ],
)
def test_a_review_opens_when_the_prod_deployment_ends(cast, site_a, path, state, suggested):
    rfc = ended(cast, site_a, path)
    assert rfc.state == state
    review = Review.objects.get(rfc=rfc)
    assert review.outcome == state and review.suggested_code == suggested and not review.done
    assert AuditEvent.objects.filter(action="releases.review.opened", object_id=rfc.number).count() == 1
    told = set(Notice.objects.filter(kind="review.due").values_list("user__username", flat=True))
    assert told == {"dev", "releasemgr"}


def test_closing_waits_for_the_review(cast, site_a):
    rfc = ended(cast, site_a, [S.RUNNING, S.SUCCEEDED])
    with pytest.raises(RuleViolation, match="Complete the post-implementation review"):
        wf.transition(cast["dev"], rfc, "close")
    with pytest.raises(ValidationError) as bad:
        reviews.complete(cast["dev"], rfc, close_code="great", what_happened=" ")
    assert set(bad.value.message_dict) == {"close_code", "what_happened"}
    reviews.complete(cast["dev"], rfc, close_code="with_issues", what_happened="Printer 3 needed a restart.")
    assert wf.transition(cast["dev"], rfc, "close").state == RfcState.CLOSED
    event = AuditEvent.objects.get(action="releases.review.completed")
    assert event.after["close_code"] == "with_issues" and event.actor_name == "dev"


def test_only_the_author_or_a_release_manager_reviews(cast, site_a, site_b):
    rfc = ended(cast, site_a, [S.RUNNING, S.SUCCEEDED])
    rm_b = make_user("rm_b", Role.RELEASE_MANAGER, site=site_b)
    for user in (cast["itmanager"], cast["tester"], rm_b):
        with pytest.raises(PermissionDenied):
            reviews.complete(user, rfc, close_code="successful", what_happened="fine")
    reviews.complete(cast["releasemgr"], rfc, close_code="successful", what_happened="fine")
    assert Review.objects.get(rfc=rfc).completed_by == cast["releasemgr"]


def test_complete_and_close_from_the_rfc_page(cast, site_a):
    rfc = ended(cast, site_a, [S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK])
    client = client_for(cast["dev"])
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-testid="review"' in page and 'value="rolled_back" checked' in page
    missing = client.post(
        reverse("releases:review", args=[rfc.uuid]), {"close_code": "rolled_back", "close": "1"}
    )
    assert missing.status_code == 400 and "Say what happened." in missing.content.decode()
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.ROLLED_BACK
    done = client.post(
        reverse("releases:review", args=[rfc.uuid]),
        {"close_code": "rolled_back", "what_happened": "Smoke test failed; undo script ran.", "close": "1"},
    )
    assert done.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.CLOSED
    again = client.post(
        reverse("releases:review", args=[rfc.uuid]), {"close_code": "failed", "what_happened": "x"}
    )
    assert again.status_code == 409
    assert Review.objects.get(rfc=rfc).close_code == "rolled_back"


def test_an_rfc_that_ended_before_reviews_existed_gets_one_when_written(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.DEPLOYED)  # as a v0.14 database holds it
    assert not Review.objects.filter(rfc=rfc).exists()
    client = client_for(cast["dev"])
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'value="successful" checked' in page
    with pytest.raises(RuleViolation):
        wf.transition(cast["dev"], Rfc.objects.get(pk=rfc.pk), "close")
    done = client.post(
        reverse("releases:review", args=[rfc.uuid]),
        {"close_code": "successful", "what_happened": "Went in cleanly.", "close": "1"},
    )
    assert done.status_code == 302 and Rfc.objects.get(pk=rfc.pk).state == RfcState.CLOSED
    assert Review.objects.get(rfc=rfc).outcome == "deployed"


def test_no_review_before_the_prod_deployment_ends(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["dev"])
    assert (
        'data-testid="review"' not in client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    )
    early = client.post(
        reverse("releases:review", args=[rfc.uuid]), {"close_code": "successful", "what_happened": "x"}
    )
    assert early.status_code == 409 and not Review.objects.filter(rfc=rfc).exists()
