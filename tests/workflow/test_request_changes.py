"""One-step approval and "request changes" (issue 15 item 4; A5, A6): the decision page asks for a
decision with nothing preselected, shows what changed since the last signature, and a request for
changes sends the RFC back to its author with the question."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals.models import Approval, ApprovalState, Decision, Signature
from audit.models import AuditEvent
from outbox.models import Mail
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for
from workflow import services as wf

QUESTION = "Which label printers were in the UAT run? Please add the Zebra ZT410 log."


@pytest.fixture
def submitted(people, site_a):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    return rfc


def pending(rfc) -> Approval:
    return Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)


def test_nothing_is_preselected_and_a_missing_decision_is_a_400(people, submitted):
    client = client_for(people["itmanager"])
    url = reverse("approvals:decide", args=[pending(submitted).pk])
    page = client.get(url).content.decode()
    assert page.count('name="decision"') == 3
    assert " checked" not in page.split('data-testid="sign-form"')[1].split("</fieldset>")[0]
    refused = client.post(url, {"password": PASSWORD, "reason": ""})
    assert refused.status_code == 400
    assert "Choose a decision" in refused.content.decode()
    assert not Signature.objects.exists()
    # The password was not spent on the refusal: no failed attempt is on record.
    assert not AuditEvent.objects.filter(action="approvals.signature.refused").exists()


def test_request_changes_round_trip(people, submitted):
    client = client_for(people["itmanager"])
    url = reverse("approvals:decide", args=[pending(submitted).pk])
    no_question = client.post(url, {"decision": "changes", "password": PASSWORD, "reason": " "})
    assert no_question.status_code == 400 and "Say what should change" in no_question.content.decode()
    done = client.post(url, {"decision": "changes", "password": PASSWORD, "reason": QUESTION})
    assert done.status_code == 302

    rfc = Rfc.objects.get(pk=submitted.pk)
    assert rfc.state == RfcState.DRAFT
    signature = Signature.objects.get()
    assert signature.decision == Decision.CHANGES
    assert signature.meaning.startswith("asked for changes as IT Manager")
    assert Approval.objects.get(pk=signature.approval_id).state == ApprovalState.CHANGES
    event = AuditEvent.objects.filter(action="releases.rfc.changes_requested").get()
    assert QUESTION in event.reason and event.after["state"] == "draft"
    assert AuditEvent.objects.filter(action="approvals.signature.changes_requested").exists()
    mail = Mail.objects.get(kind="notify.rfc.changes_requested", to=["dev@plant.test"])
    assert QUESTION in mail.body and "Mend the RFC" in mail.body

    # The author sees the question on the RFC page until they submit again.
    author = client_for(people["dev"])
    page = author.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-testid="changes-requested"' in page and "Zebra ZT410" in page
    wf.update_rfc(people["dev"], rfc, title="Raise label printer timeout on the Zebra ZT410 too")
    wf.submit(people["dev"], rfc)
    page = author.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-testid="changes-requested"' not in page

    # The next signer sees what changed since the question was asked.
    decision = client.get(reverse("approvals:decide", args=[pending(rfc).pk])).content.decode()
    assert "1 change since" in decision and "Title" in decision
    assert "Raise label printer timeout on the Zebra ZT410 too" in decision
    client.post(
        reverse("approvals:decide", args=[pending(rfc).pk]), {"decision": "approve", "password": PASSWORD}
    )
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED


def test_the_first_signer_is_told_there_is_no_earlier_signature(people, submitted):
    page = client_for(people["itmanager"]).get(reverse("approvals:decide", args=[pending(submitted).pk]))
    assert "No earlier signature" in page.content.decode()


def test_request_changes_through_the_api(people, submitted):
    api = api_client_for(people["itmanager"])
    approval = pending(submitted)
    missing = api.post(
        f"/api/v1/approvals/{approval.pk}/request-changes/", {"password": PASSWORD}, format="json"
    )
    assert missing.status_code == 400
    response = api.post(
        f"/api/v1/approvals/{approval.pk}/request-changes/",
        {"password": PASSWORD, "reason": QUESTION},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["decision"] == "changes"
    assert Rfc.objects.get(pk=submitted.pk).state == RfcState.DRAFT
