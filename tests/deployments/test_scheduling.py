"""Scheduling into the plant calendar (W1–W6): the service, the page,
the API, the gate that re-checks before dispatch, emergency changes and their review."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse

from approvals.models import Approval, ApprovalRound, ApprovalState, RoundPurpose, RoundState
from audit.models import AuditEvent
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from deployments import scheduling
from deployments.models import Deployment, DeploymentState
from environments.models import Freeze, Tier
from releases import gates
from releases import services as rfc_services
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for, make_user
from workflow import services as wf

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 9, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
TUESDAY_9 = datetime(2026, 11, 10, 9, 0, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def approved(people, site, version="1.0.1", **fields) -> Rfc:
    """A patch RFC through its real chain (IT Manager), or an emergency one through the CIO."""
    return factories.sign_chain(
        people, factories.ready_rfc(people["dev"], people["tester"], site, version=version, **fields)
    )


# --- The service ---------------------------------------------------------------------------------
def test_schedule_into_an_allowed_slot(people, site_a):
    rfc = approved(people, site_a)
    deployment = wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30)
    assert deployment.environment.tier == Tier.PROD and deployment.state == DeploymentState.SCHEDULED
    assert deployment.scheduled_start == TUESDAY_9.astimezone(UTC)
    assert deployment.scheduled_end - deployment.scheduled_start == timedelta(
        minutes=60
    )  # + smoke + rollback
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SCHEDULED
    event = AuditEvent.objects.get(action="releases.deployment.scheduled")
    assert event.after["local_start"] == "2026-11-10 09:00 CET" and event.object_id == rfc.number
    window = next(g for g in gates.evaluate(rfc, "deploy") if g.name == scheduling.WINDOW_GATE)
    assert window.passed and "PLA Tue 10 Nov 09:00 CET" in window.reason


def test_a_blocked_time_is_refused_with_every_reason(people, site_a):
    rfc = approved(people, site_a)
    friday_handover = datetime(2026, 11, 13, 14, 10, tzinfo=BERLIN)
    with pytest.raises(RuleViolation) as refused:
        wf.schedule(people["releasemgr"], rfc, site_a, friday_handover, 30)
    reasons = [item["reason"] for item in refused.value.failed]
    assert "Friday" in reasons and "shift handover 14:00 ±30 min" in reasons
    assert refused.value.rule == scheduling.WINDOW_GATE
    assert (
        not Deployment.objects.filter(environment__tier="PROD").exists()
        and Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    )


def test_overlapping_deployments_on_one_environment_are_refused(people, site_a):
    first = approved(people, site_a, version="1.0.1")
    second = approved(people, site_a, version="1.0.2")
    wf.schedule(people["releasemgr"], first, site_a, TUESDAY_9, 30)
    with pytest.raises(RuleViolation, match=f"taken by {first.number}"):
        wf.schedule(people["releasemgr"], second, site_a, TUESDAY_9 + timedelta(minutes=30), 30)
    offered = scheduling.slots(second, site_a, NOW, 30, count=2)
    assert offered[0].start == (TUESDAY_9 + timedelta(hours=1)).astimezone(UTC)  # right after the first


def test_only_release_managers_schedule_and_only_approved_rfcs(people, site_a):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    with pytest.raises(PermissionDenied):
        wf.schedule(people["dev"], rfc, site_a, TUESDAY_9, 30)
    with pytest.raises(StateConflict, match="only an approved RFC"):
        wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30)
    ready = approved(people, site_a, version="1.0.2")
    with pytest.raises(ValidationError, match="in the past"):
        wf.schedule(people["releasemgr"], ready, site_a, NOW - timedelta(hours=1), 30)


def test_multi_site_rfc_is_scheduled_when_every_site_is_booked(people, site_a, site_b):
    rfc = factories.rfc(
        people["dev"], site_a, impacts=[{"site": site_a, "lines": ["L1"]}, {"site": site_b, "lines": ["P3"]}]
    )
    for site in (site_a, site_b):
        factories.promote(rfc, site)
        rfc_services.sign_off_uat(people["tester"], rfc, site, "Fine in UAT", [factories.png()])
    wf.submit(people["dev"], rfc)
    for approval in Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING):
        wf.sign(people["itmanager"], approval, "approve", PASSWORD)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    wf.schedule(
        people["releasemgr"], rfc, site_b, datetime(2026, 11, 10, 9, tzinfo=ZoneInfo("America/Chicago")), 30
    )
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SCHEDULED


def test_a_dev_deployment_does_not_count_as_a_prod_booking(people, site_a, site_b):
    """W5: only PROD slots schedule an RFC. A DEV deployment under way at the second site used to
    count as its booking, so the RFC was scheduled with that site's PROD unbooked."""
    rfc = factories.rfc(
        people["dev"], site_a, impacts=[{"site": site_a, "lines": ["L1"]}, {"site": site_b, "lines": ["P3"]}]
    )
    for site in (site_a, site_b):
        factories.promote(rfc, site)
        rfc_services.sign_off_uat(people["tester"], rfc, site, "Fine in UAT", [factories.png()])
    wf.submit(people["dev"], rfc)
    for approval in Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING):
        wf.sign(people["itmanager"], approval, "approve", PASSWORD)
    dev_b = site_b.environments.get(tier=Tier.DEV)
    scheduling.deploy_now(people["releasemgr"], Rfc.objects.get(pk=rfc.pk), dev_b)
    wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    assert scheduling.booked_sites(rfc) == {site_a.pk}
    window = next(g for g in gates.evaluate(rfc, "deploy") if g.name == scheduling.WINDOW_GATE)
    assert not window.passed and site_b.code in window.reason


def test_unschedule_frees_the_slot(people, site_a):
    rfc = approved(people, site_a)
    deployment = wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30)
    wf.transition(people["releasemgr"], rfc, "unschedule", reason="Line 2 down for repair")
    deployment.refresh_from_db()
    assert (
        deployment.state == DeploymentState.CANCELLED
        and Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    )
    assert wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30).state == DeploymentState.SCHEDULED


def test_the_window_gate_checks_again_before_dispatch(people, site_a):
    rfc = approved(people, site_a)
    wf.schedule(people["releasemgr"], rfc, site_a, TUESDAY_9, 30)
    Freeze.objects.create(site=site_a, name="Line 2 rebuild", starts_at=NOW, ends_at=NOW + timedelta(days=7))
    window = next(g for g in gates.evaluate(rfc, "deploy") if g.name == scheduling.WINDOW_GATE)
    assert not window.passed and "freeze: Line 2 rebuild" in window.reason


def test_a_local_time_the_clocks_skip_is_refused(site_a):
    with pytest.raises(ValidationError, match="does not exist in Europe/Berlin"):
        scheduling.parse_local("2027-03-28T02:30", BERLIN)
    assert scheduling.parse_local("2026-10-25T02:30", BERLIN) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_release_managers_booking_one_slot_leave_one_deployment(people, site_a):
    first = approved(people, site_a, version="1.0.1")
    second = approved(people, site_a, version="1.0.2")
    other = make_user("releasemgr2", Role.RELEASE_MANAGER)
    barrier, outcomes = threading.Barrier(2), []

    def book(user, rfc):
        try:
            barrier.wait()
            wf.schedule(user, rfc, site_a, TUESDAY_9, 30)
            outcomes.append("booked")
        except RuleViolation:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=book, args=(people["releasemgr"], first)),
        threading.Thread(target=book, args=(other, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["booked", "refused"]
    assert Deployment.objects.filter(state=DeploymentState.SCHEDULED).count() == 1


# --- Emergency changes (W6) ----------------------------------------------------------------------
def test_emergency_needs_a_reason_and_the_cio_or_plant_director(people, site_a):
    with pytest.raises(ValidationError, match="cannot wait"):
        factories.rfc(people["dev"], site_a, emergency=True)
    rfc = factories.ready_rfc(
        people["dev"],
        people["tester"],
        site_a,
        version="1.0.2",
        emergency=True,
        emergency_reason="Scanner firmware bricks line 2",
    )
    wf.submit(people["dev"], rfc)
    rnd = ApprovalRound.objects.get(rfc=rfc, state=RoundState.OPEN)
    assert [(s.roles, s.rule) for s in rnd.steps.all()] == [(["cio", "plant_director"], "any")]
    with pytest.raises(PermissionDenied):
        wf.sign(people["itmanager"], Approval.objects.filter(rfc=rfc).first(), "approve", PASSWORD)
    wf.sign(
        people["plantdirector"], Approval.objects.get(rfc=rfc, role=Role.PLANT_DIRECTOR), "approve", PASSWORD
    )
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    assert Approval.objects.get(rfc=rfc, role=Role.CIO).state == ApprovalState.NOT_NEEDED


def test_emergency_runs_outside_windows_but_not_in_a_handover(people, site_a):
    rfc = approved(people, site_a, emergency=True, emergency_reason="Scanner firmware bricks line 2")
    friday_handover = datetime(2026, 11, 13, 21, 45, tzinfo=BERLIN)
    with pytest.raises(RuleViolation) as refused:
        wf.schedule(people["releasemgr"], rfc, site_a, friday_handover, 30)
    assert [item["reason"] for item in refused.value.failed] == ["shift handover 22:00 ±30 min"]
    with pytest.raises(PermissionDenied, match="Plant Director"):
        wf.schedule(people["releasemgr"], rfc, site_a, friday_handover, 30, handover_override=True)
    director = make_user("director_rm", Role.PLANT_DIRECTOR, Role.RELEASE_MANAGER)
    deployment = wf.schedule(director, rfc, site_a, friday_handover, 30, handover_override=True)
    assert deployment.emergency and deployment.handover_override
    event = AuditEvent.objects.get(action="releases.deployment.scheduled")
    assert event.after["handover_override"] is True and event.after["emergency"] is True


def test_emergency_gets_a_review_by_the_normal_chain_due_in_five_days(people, site_a):
    rfc = approved(people, site_a, emergency=True, emergency_reason="Scanner firmware bricks line 2")
    friday_night = datetime(2026, 11, 13, 19, 0, tzinfo=BERLIN)
    wf.schedule(people["releasemgr"], rfc, site_a, friday_night, 30)
    review = ApprovalRound.objects.get(rfc=rfc, purpose=RoundPurpose.REVIEW)
    assert review.due_at == friday_night.astimezone(UTC) + timedelta(days=5)
    assert [s.roles for s in review.steps.order_by("order")] == [["it_manager"]]  # the patch chain
    wf.sign(people["itmanager"], Approval.objects.get(step__round=review), "approve", PASSWORD)
    review.refresh_from_db()
    assert review.state == RoundState.APPROVED
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SCHEDULED  # a review does not move the RFC
    assert AuditEvent.objects.filter(action="approvals.review.completed", object_id=rfc.number).exists()


def test_non_emergency_cannot_override_a_handover(people, site_a):
    rfc = approved(people, site_a)
    director = make_user("director_rm", Role.PLANT_DIRECTOR, Role.RELEASE_MANAGER)
    with pytest.raises(ValidationError, match="Only an emergency change"):
        wf.schedule(
            director, rfc, site_a, datetime(2026, 11, 11, 14, 10, tzinfo=BERLIN), 30, handover_override=True
        )


# --- The page ------------------------------------------------------------------------------------
def test_schedule_page_offers_slots_and_books_one(people, site_a):
    rfc = approved(people, site_a)
    client = client_for(people["releasemgr"])
    url = reverse("releases:schedule", args=[rfc.uuid])
    page = client.get(url).content.decode()
    assert 'data-testid="slot"' in page and "Tue 10 Nov" in page
    fragment = client.get(url, {"site": site_a.code, "duration": "90"}, HTTP_HX_REQUEST="true")
    assert "<html" not in fragment.content.decode() and "90 min" in fragment.content.decode()
    response = client.post(url, {"site": site_a.code, "duration": "30", "slot": TUESDAY_9.isoformat()})
    assert response.status_code == 302
    assert Deployment.objects.get(rfc=rfc, environment__tier="PROD").scheduled_start == TUESDAY_9.astimezone(
        UTC
    )
    detail = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "Tue 10 Nov 2026 09:00 CET" in detail


def test_schedule_page_refuses_a_typed_time_with_its_reasons(people, site_a):
    rfc = approved(people, site_a)
    client = client_for(people["releasemgr"])
    url = reverse("releases:schedule", args=[rfc.uuid])
    response = client.post(url, {"site": site_a.code, "duration": "30", "start": "2026-11-11T14:10"})
    body = response.content.decode()
    assert response.status_code == 422
    assert "shift handover 14:00 ±30 min" in body and 'data-testid="slot"' in body
    gap = client.post(url, {"site": site_a.code, "duration": "30", "start": "2027-03-28T02:30"})
    assert gap.status_code == 400 and "does not exist in Europe/Berlin" in gap.content.decode()
    assert not Deployment.objects.filter(environment__tier="PROD").exists()


def test_schedule_page_is_for_release_managers(people, site_a):
    rfc = approved(people, site_a)
    assert client_for(people["dev"]).get(reverse("releases:schedule", args=[rfc.uuid])).status_code == 403


# --- The API -------------------------------------------------------------------------------------
def test_windows_check_and_next_over_the_api(people, site_a, site_b):
    api = api_client_for(people["releasemgr"])
    prod = site_a.environments.get(tier=Tier.PROD)
    ok = api.get(
        "/api/v1/windows/check/", {"environment": prod.pk, "start": TUESDAY_9.isoformat(), "duration": 30}
    )
    assert ok.status_code == 200 and ok.json()["allowed"] is True and ok.json()["reasons"] == []
    late = api.get(
        "/api/v1/windows/check/",
        {"environment": prod.pk, "duration": 30, "start": "2026-11-10T10:45:00+01:00"},
    )
    assert late.json()["allowed"] is False and late.json()["reasons"][0].startswith("window ends 11:00")
    naive = api.get(
        "/api/v1/windows/check/", {"environment": prod.pk, "start": "2026-11-10T09:00", "duration": 30}
    )
    assert naive.status_code == 400 and "offset" in naive.json()["detail"]
    slots = api.get(
        "/api/v1/windows/next/",
        {"environment": prod.pk, "after": NOW.isoformat(), "duration": 30, "count": 3},
    ).json()["slots"]
    assert [s["start"] for s in slots] == [
        "2026-11-10T08:00:00+00:00",
        "2026-11-10T09:00:00+00:00",
        "2026-11-10T13:30:00+00:00",
    ]
    scoped = api_client_for(people["itmanager_a"])
    other = site_b.environments.get(tier=Tier.PROD)
    assert (
        scoped.get(
            "/api/v1/windows/check/",
            {"environment": other.pk, "start": TUESDAY_9.isoformat(), "duration": 30},
        ).status_code
        == 404
    )


def test_schedule_over_the_api(people, site_a):
    rfc = approved(people, site_a)
    api = api_client_for(people["releasemgr"])
    url = f"/api/v1/rfcs/{rfc.uuid}/schedule/"
    refused = api.post(url, {"site": site_a.code, "start": "2026-11-13T10:00:00+01:00"}, format="json")
    assert refused.status_code == 422 and "Friday" in [f["reason"] for f in refused.json()["failed"]]
    booked = api.post(
        url, {"site": site_a.code, "start": TUESDAY_9.isoformat(), "duration": 45}, format="json"
    )
    assert booked.status_code == 201 and booked.json()["duration_minutes"] == 45
    assert (
        api.post(f"/api/v1/rfcs/{rfc.uuid}/transition/", {"name": "schedule"}, format="json").status_code
        == 400
    )


def test_offered_slots_stay_bookable_at_a_minute_boundary(people, site_a):
    """A slot offered a second before it starts would be refused as past when the form comes back."""
    from deployments import scheduling as booking

    open_rules = datetime(2026, 11, 10, 8, 59, 59, tzinfo=BERLIN)  # Tuesday, the window opens at 09:00
    rfc = approved(people, site_a)
    with time_machine.travel(open_rules, tick=False):
        page = client_for(people["releasemgr"]).get(reverse("releases:schedule", args=[rfc.uuid]))
    first = page.context["slots"][0][0]
    assert first.start >= open_rules + booking.BOOKING_LEAD
    with time_machine.travel(open_rules + timedelta(seconds=5), tick=False):
        response = client_for(people["releasemgr"]).post(
            reverse("releases:schedule", args=[rfc.uuid]),
            {"site": site_a.code, "duration": "30", "slot": first.start.isoformat()},
        )
    assert response.status_code == 302


def test_the_slot_picker_offers_starts_every_quarter_hour(people, site_a, settings):
    """Slots that fit the change: starts on a 15-minute grid, one after another, for the change's own
    duration — not hour blocks."""
    settings.SLOT_STEP_MINUTES = 15
    rfc = approved(people, site_a)
    offered = scheduling.slots(rfc, site_a, TUESDAY_9.astimezone(UTC) - timedelta(minutes=7), 30, count=4)
    starts = [slot.start.astimezone(BERLIN).strftime("%H:%M") for slot in offered]
    assert starts == ["09:00", "09:15", "09:30", "09:45"][: len(starts)] and len(starts) >= 2
    assert all(slot.start.minute % 15 == 0 for slot in offered)


def test_a_deployment_that_ends_early_frees_the_rest_of_its_slot(people, site_a):
    """A booking holds only its real span: once the deployment has ended (succeeded or rolled back),
    the rest of its block can be booked at once."""
    first = approved(people, site_a, version="1.0.1")
    second = approved(people, site_a, version="1.0.2")
    wf.schedule(people["releasemgr"], first, site_a, TUESDAY_9, 30)
    booked = Deployment.objects.get(rfc=first, environment__tier="PROD")
    later = TUESDAY_9 + timedelta(minutes=15)
    with pytest.raises(RuleViolation, match=f"taken by {first.number}"):
        wf.schedule(people["releasemgr"], second, site_a, later, 30)
    with time_machine.travel(TUESDAY_9.astimezone(UTC) + timedelta(minutes=5), tick=False):
        Deployment.objects.filter(pk=booked.pk).update(
            state=DeploymentState.SUCCEEDED,
            started_at=TUESDAY_9.astimezone(UTC),
            finished_at=TUESDAY_9.astimezone(UTC) + timedelta(minutes=4),
        )
        offered = scheduling.slots(
            second, site_a, TUESDAY_9.astimezone(UTC) + timedelta(minutes=6), 30, count=2
        )
        assert offered[0].start == later.astimezone(UTC)  # inside the first booking's block
        wf.schedule(people["releasemgr"], second, site_a, later, 30)
    assert Deployment.objects.get(rfc=second, environment__tier="PROD").scheduled_start == later.astimezone(
        UTC
    )
