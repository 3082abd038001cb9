"""The periodic review report (issue 17 item 5, Annex 11 §11): drawn up for November 2026 from a
hand-built history — figures, incidents, deviations, access, audit chain, configuration changes and
follow-ups — frozen with its SHA-256, signed by the reviewer with the password re-entered (a wrong
one is refused and audited), and printed as a PDF checked as text and as an image."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit import tasks as audit_tasks
from audit.models import AuditEvent
from audit.services import record
from core.errors import StateConflict
from deployments.states import DeploymentState as S
from releases.models import GateWaiver
from reports import periodic
from reports.models import PeriodicReview
from tests import factories
from tests.conftest import PASSWORD, client_for
from tests.reports.history import NOW, at
from workflow.models import Review

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def past_uat_booking(rfc, site, people, days_ago: int, state, **fields):
    return factories.booking(
        rfc, site, people["releasemgr"], hours_ahead=-24 * days_ago, state=state, tier="UAT", **fields
    )


@pytest.fixture
def november(history, people, site_a):
    """The history, plus a waiver, a handover override, an open review with follow-ups and a
    configuration change, all in November."""
    GateWaiver.objects.create(
        rfc=history["missed"],
        gate="UAT data fresh",
        artifact_sha256=history["missed"].release.artifact_sha256,
        reason="refresh tonight",
        failing_reason="UAT data is 40 days old",
        waived_by=people["releasemgr"],
        waived_at=at("2026-11-23T09:00"),
    )
    past_uat_booking(history["failed"], site_a, people, 20, S.SUCCEEDED, handover_override=True)
    Review.objects.create(
        rfc=history["rolled"],
        outcome="rolled_back",
        follow_ups="Load-test the label queue",
        opened_at=at("2026-11-13T08:00"),
    )
    with time_machine.travel(at("2026-11-16T10:00"), tick=False):
        record(
            "environments.environment.updated",
            site_a.environments.get(tier="PROD"),
            actor=people["admin"],
            after={"smoke": "print one label"},
        )
        audit_tasks.verify_chain()
    return history


def draw_up(user, **kwargs):
    return periodic.create(user, "2026-11-01", "2026-11-30", **kwargs)


def test_the_review_freezes_what_the_evaluation_rests_on(november, people):
    review = draw_up(people["auditor"])
    c = review.content
    assert review.sites == ["PLA", "PLB"] and c["period"] == {
        "since": "2026-11-01",
        "until": "2026-11-30",
        "zone": "UTC",
    }
    assert review.content_hash == hashlib.sha256(periodic.canonical(c)).hexdigest()
    figures = {f["label"]: f["value"] for f in c["figures"]}
    assert figures["Change failure rate"] == "50%" and figures["Emergency ratio"] == "17%"
    assert c["incidents"]["count"] == 2
    assert {r["rfc"] for r in c["incidents"]["rows"]} == {
        november["rolled"].number,
        november["failed"].number,
    }
    deviations = c["deviations"]
    assert (
        deviations["waivers"]["count"] == 1 and deviations["waivers"]["rows"][0]["gate"] == "UAT data fresh"
    )
    assert deviations["emergencies"]["rows"][0]["rfc"] == november["failed"].number
    assert deviations["handover_overrides"]["count"] == 1
    assert "admin" in c["access"]["admins"] and "admin_a" in c["access"]["admins"]
    assert any(
        u["username"] == "releasemgr" and "Release manager @ every site" in u["roles"][0]
        for u in c["access"]["users"]
    )
    assert c["audit_chain"]["state"] == "intact" and c["audit_chain"]["verifications_in_period"] == 1
    assert any(
        r["action"] == "environments.environment.updated" and r["count"] == 1 for r in c["configuration"]
    )
    assert c["follow_ups"][0]["rfc"] == november["rolled"].number and c["follow_ups"][0]["review"] == "open"
    event = AuditEvent.objects.get(action="reports.periodic_review.created")
    assert event.after["content_hash"] == review.content_hash


def test_one_site_only_and_refusals(november, people):
    review = draw_up(people["auditor"], site_code="PLB")
    assert review.sites == ["PLB"] and review.content["incidents"]["count"] == 0
    with pytest.raises(PermissionDenied):
        draw_up(people["dev"])
    with pytest.raises(ValidationError, match="days that have passed"):
        periodic.create(people["auditor"], "2026-12-01", "2026-12-31")
    with pytest.raises(ValidationError, match="Choose one of your sites"):
        draw_up(people["auditor"], site_code="NOPE")


def test_the_reviewer_signs_with_the_password_and_a_wrong_one_is_refused(november, people):
    auditor = people["auditor"]
    review = draw_up(auditor)
    with pytest.raises(ValidationError, match="not signed"):
        periodic.sign(auditor, review, "All in order.", "wrong")
    review.refresh_from_db()
    assert not review.signed
    assert AuditEvent.objects.filter(action="reports.periodic_review.signature_refused").count() == 1
    with pytest.raises(ValidationError, match="conclusion"):
        periodic.sign(auditor, review, "  ", PASSWORD)
    signed = periodic.sign(auditor, review, "Rollbacks reviewed; follow-up on the label queue.", PASSWORD)
    assert signed.signed and signed.signed_by == auditor and signed.printed_name == "Auditor"
    event = AuditEvent.objects.get(action="reports.periodic_review.signed")
    assert event.after["content_hash"] == review.content_hash and event.actor_name == "auditor"
    with pytest.raises(StateConflict):
        periodic.sign(people["admin"], signed, "Again", PASSWORD)


def test_the_pdf_reads_as_a_review_and_renders(november, people, tmp_path):
    review = periodic.sign(people["auditor"], draw_up(people["auditor"]), "Reviewed; all in order.", PASSWORD)
    path = tmp_path / "review.pdf"
    path.write_bytes(periodic.pdf(review))
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "Periodic review of Plant Change Control",
        "Incidents: rollbacks, failed rollbacks and failures (2)",
        november["rolled"].number,
        "Deviations: waived gates (1)",
        "Access review",
        "Chain intact",
        "Follow-ups from post-implementation reviews (1)",
        "Signed electronically by Auditor (auditor)",
        review.content_hash[:32],
    ):
        assert expected in " ".join(text.split()), expected
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")], check=True
    )
    assert next(tmp_path.glob("page*.png")).stat().st_size > 5000


def test_the_pages(november, people):
    client = client_for(people["auditor"])
    response = client.post(
        reverse("audit:periodic_reviews"), {"since": "2026-11-01", "until": "2026-11-30", "site": ""}
    )
    review = PeriodicReview.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "audit:periodic_review", args=[review.pk]
    )
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="review-state">Draft' in page and review.content_hash in page
    refused = client.post(
        reverse("audit:periodic_review_sign", args=[review.pk]), {"conclusion": "ok", "password": "x"}
    )
    assert refused.status_code == 400 and "the review was not signed" in refused.content.decode()
    done = client.post(
        reverse("audit:periodic_review_sign", args=[review.pk]),
        {"conclusion": "All in order.", "password": PASSWORD},
    )
    assert done.status_code == 302
    assert 'data-testid="review-state">Signed' in client.get(done["Location"]).content.decode()
    pdf = client.get(reverse("audit:periodic_review_pdf", args=[review.pk]))
    assert (
        pdf.content.startswith(b"%PDF")
        and "periodic-review-20261101-20261130.pdf" in pdf["Content-Disposition"]
    )
    bad = client.post(reverse("audit:periodic_reviews"), {"since": "2026-11-31", "until": "2026-11-30"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.content.decode()
    assert client_for(people["dev"]).get(reverse("audit:periodic_reviews")).status_code == 403
    assert client.get(reverse("audit:periodic_review", args=[999])).status_code == 404


def test_the_content_is_fixed_once_drawn_up(november, people, site_a):
    review = draw_up(people["auditor"])
    before = review.content_hash
    past_uat_booking(november["ok"], site_a, people, 15, S.ROLLED_BACK, finished_at=NOW - timedelta(days=15))
    review.refresh_from_db()
    assert review.content_hash == before and review.content["incidents"]["count"] == 2
