"""Release rings (E10, issue 16 item 1): a release reaches the sites ring by ring. Ring 1 is refused
until every site of ring 0 succeeded in PROD with the same artifact, its review is done without a
failure and its soak time passed; a rollback halts the rollout and cancels the bookings of the sites
still to take it, with notice. The rings come from the sites' risk tiers unless a release manager
saved a plan for the release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from core import clock
from core.errors import RuleViolation
from deployments.models import Deployment, DeploymentState
from deployments.states import move
from environments.models import RolloutRing
from notify.models import Notice
from releases import gates
from releases.models import Rfc, RolloutPlan
from releases.states import RfcState
from tests import factories
from tests.conftest import client_for, make_site
from workflow import reviews, rollout
from workflow import services as wf

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 9, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
TUESDAY_9 = datetime(2026, 11, 10, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
THURSDAY_9_CHICAGO = datetime(2026, 11, 12, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
NEXT_TUESDAY_9 = datetime(2026, 11, 17, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
RING = rollout.RULE


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def tiers(site_a, site_b):
    """PLA is the pilot, PLB a low-risk site: a release reaches PLA first."""
    site_a.rollout_ring = RolloutRing.PILOT
    site_a.save()
    site_b.rollout_ring = RolloutRing.LOW_RISK
    site_b.save()
    return site_a, site_b


def approved(people, site, release):
    return factories.sign_chain(
        people, factories.ready_rfc(people["dev"], people["tester"], site, release=release)
    )


def ring_gate(rfc, stage="schedule"):
    return next(g for g in gates.evaluate(rfc, stage) if g.name == RING)


def run(deployment, *path):
    for target in path:
        fields = (
            {"finished_at": clock.now()} if target != DeploymentState.RUNNING else {"started_at": clock.now()}
        )
        move(deployment, target, outcome=f"ended {target}", **fields)


def deploy_ring_zero(people, site, rfc, path=(DeploymentState.RUNNING, DeploymentState.SUCCEEDED)):
    deployment = wf.schedule(people["releasemgr"], rfc, site, TUESDAY_9, 30)
    run(deployment, *path)
    return deployment


def test_ring_one_waits_for_ring_zero_to_succeed_be_reviewed_and_soak(people, tiers, frozen_now):
    pla, plb = tiers
    release = factories.release(people["dev"], "1.1.0")
    first, second = approved(people, pla, release), approved(people, plb, release)

    assert ring_gate(first).passed and "Ring 0 of 2" in ring_gate(first).reason
    refused = ring_gate(second)
    assert not refused.passed and "PLA has not run MES 1.1.0 in PROD successfully yet" in refused.reason
    with pytest.raises(RuleViolation) as caught:
        wf.schedule(people["releasemgr"], second, plb, TUESDAY_9 + timedelta(days=1), 30)
    assert RING in {g["name"] for g in caught.value.failed}
    assert not Deployment.objects.filter(rfc=second, environment__tier="PROD").exists()

    deploy_ring_zero(people, pla, first)
    assert Rfc.objects.get(pk=first.pk).state == RfcState.DEPLOYED
    assert "review of " + first.number + " is not complete" in ring_gate(second).reason

    reviews.complete(people["dev"], first, close_code="successful", what_happened="Labels fine on all lines.")
    soaking = ring_gate(second)
    assert not soaking.passed and "Ring 0 soaks until" in soaking.reason and "1 day" in soaking.reason

    frozen_now.move_to(clock.now() + timedelta(days=1, minutes=1))
    passed = ring_gate(second)
    assert passed.passed and "ring 0 (PLA) succeeded" in passed.reason
    booked = wf.schedule(people["releasemgr"], second, plb, THURSDAY_9_CHICAGO, 30)
    assert booked.state == DeploymentState.SCHEDULED
    # The worker asks again right before it starts: still allowed.
    assert ring_gate(Rfc.objects.get(pk=second.pk), "deploy").passed


def test_a_review_reporting_a_failure_holds_the_next_ring(people, tiers, frozen_now):
    pla, plb = tiers
    release = factories.release(people["dev"], "1.1.0")
    first, second = approved(people, pla, release), approved(people, plb, release)
    deploy_ring_zero(people, pla, first)
    reviews.complete(
        people["dev"], first, close_code="failed", what_happened="Labels misprinted after an hour."
    )
    frozen_now.move_to(clock.now() + timedelta(days=2))
    held = ring_gate(second)
    assert not held.passed and f"the review of {first.number} reports failed" in held.reason


def test_an_rfc_spanning_two_rings_is_told_to_split(people, tiers):
    pla, plb = tiers
    both = factories.rfc(
        people["dev"],
        pla,
        impacts=[
            {"site": pla, "lines": ["Line 1"], "modules": ["Labels"]},
            {"site": plb, "lines": ["Line 1"], "modules": ["Labels"]},
        ],
    )
    gate = ring_gate(both)
    assert not gate.passed and "file one RFC per ring" in gate.reason


def test_sites_of_one_tier_form_one_ring(people, site_a, site_b):
    """By default every site is standard: one ring, nothing to wait for."""
    release = factories.release(people["dev"], "1.1.0")
    factories.rfc(people["dev"], site_a, release=release)
    rfc = factories.rfc(people["dev"], site_b, release=release)
    gate = ring_gate(rfc)
    assert gate.passed and "one ring" in gate.reason
    assert [[s.site.code for s in r.sites] for r in rollout.status(release).rings] == [["PLA", "PLB"]]


def test_a_rollback_halts_the_rollout_and_cancels_the_bookings_of_the_sites_still_to_take_it(
    people, tiers, frozen_now, django_capture_on_commit_callbacks
):
    pla, plb = tiers
    plc = make_site("PLC", rollout_ring=RolloutRing.LOW_RISK)  # ring 1 beside PLB
    release = factories.release(people["dev"], "1.1.0")
    first = approved(people, pla, release)
    deploy_ring_zero(people, pla, first)
    reviews.complete(people["dev"], first, close_code="successful", what_happened="Fine.")
    frozen_now.move_to(clock.now() + timedelta(days=1, minutes=1))
    second, third = approved(people, plb, release), approved(people, plc, release)
    failing = wf.schedule(people["releasemgr"], second, plb, THURSDAY_9_CHICAGO, 30)
    waiting = wf.schedule(people["releasemgr"], third, plc, NEXT_TUESDAY_9, 30)
    assert Rfc.objects.get(pk=third.pk).state == RfcState.SCHEDULED

    frozen_now.move_to(THURSDAY_9_CHICAGO)
    with django_capture_on_commit_callbacks(execute=True):
        run(failing, DeploymentState.RUNNING, DeploymentState.ROLLING_BACK, DeploymentState.ROLLED_BACK)

    waiting.refresh_from_db()
    assert waiting.state == DeploymentState.CANCELLED
    assert "Rollout of MES 1.1.0 halted: rolled back at PLB" in waiting.cancel_reason
    third.refresh_from_db()
    assert third.state == RfcState.APPROVED  # unscheduled by the portal, the signatures kept
    halted = AuditEvent.objects.get(action="releases.rollout.halted")
    assert halted.after == {"cancelled": [third.number]} and "ring 1" in halted.reason
    held = AuditEvent.objects.get(action="releases.rfc.halted", object_id=third.number)
    assert held.actor_name == "system" and "halted" in held.reason
    told = Notice.objects.filter(kind="rollout.halted", user=people["dev"])
    assert told.count() == 1
    # PLC may not book again while the rollout is halted; PLB (the site that failed) may try again.
    gate = ring_gate(third)
    assert not gate.passed and "the rollout is halted" in gate.reason
    with pytest.raises(RuleViolation):
        wf.schedule(people["releasemgr"], third, plc, NEXT_TUESDAY_9, 30)
    assert "halted" not in ring_gate(Rfc.objects.get(pk=second.pk)).reason


def test_a_planned_rollout_overrides_the_tiers_and_is_audited(people, site_a, site_b):
    release = factories.release(people["dev"], "1.1.0")
    rfc_b = factories.rfc(people["dev"], site_b, release=release)
    with pytest.raises(PermissionDenied):
        rollout.save_plan(people["dev"], release, [(60, [site_b]), (60, [site_a])])
    with pytest.raises(ValidationError, match="PLB is in two rings"):
        rollout.save_plan(people["releasemgr"], release, [(60, [site_b]), (60, [site_b])])
    with pytest.raises(ValidationError, match="at least one site"):
        rollout.save_plan(people["releasemgr"], release, [(60, [])])
    rollout.save_plan(people["releasemgr"], release, [(90, [site_b]), (60, [site_a])])
    status = rollout.status(release)
    assert status.planned and [
        (r.position, r.soak_minutes, [s.site.code for s in r.sites]) for r in status.rings
    ] == [
        (0, 90, ["PLB"]),
        (1, 60, ["PLA"]),
    ]
    event = AuditEvent.objects.get(action="releases.rollout.planned")
    assert event.before["source"] == "risk tiers" and event.after["rings"][0] == {
        "ring": 0,
        "soak_minutes": 90,
        "sites": ["PLB"],
    }
    assert ring_gate(rfc_b).passed
    # A site the plan leaves out is refused, with what to do.
    plc = make_site("PLC")
    rfc_c = factories.rfc(people["dev"], plc, release=release)
    gate = ring_gate(rfc_c)
    assert not gate.passed and "PLC is not in the rollout plan of MES 1.1.0" in gate.reason
    rollout.reset_plan(people["releasemgr"], release)
    assert not RolloutPlan.objects.filter(release=release).exists()
    assert AuditEvent.objects.filter(action="releases.rollout.planned").count() == 2


def test_the_rollout_page_shows_rings_and_lets_a_release_manager_plan_them(people, tiers):
    pla, plb = tiers
    release = factories.release(people["dev"], "1.1.0")
    first = approved(people, pla, release)
    approved(people, plb, release)
    url = reverse("releases:rollout", args=[release.uuid])

    page = client_for(people["dev"]).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="ring-0"' in html and 'data-testid="ring-1"' in html
    assert "May start now." in html and "May not start:" in html and "Plan the rings" not in html
    assert (
        f'href="{url}"'
        in client_for(people["dev"]).get(reverse("releases:detail", args=[first.uuid])).content.decode()
    )
    assert client_for(people["dev"]).post(url, {"ring_1": "0"}).status_code == 403

    manager = client_for(people["releasemgr"])
    assert "Plan the rings" in manager.get(url).content.decode()
    refused = manager.post(url, {f"ring_{pla.pk}": "0", "soak_0": "an hour"})
    assert refused.status_code == 400 and "whole minutes" in refused.content.decode()
    bad = manager.post(url, {f"ring_{pla.pk}": "9"})
    assert bad.status_code == 400
    saved = manager.post(url, {f"ring_{plb.pk}": "0", f"ring_{pla.pk}": "1", "soak_0": "120", "soak_1": "0"})
    assert saved.status_code == 302
    rings = rollout.status(release).rings
    assert [[s.site.code for s in r.sites] for r in rings] == [["PLB"], ["PLA"]] and rings[
        0
    ].soak_minutes == 120
    assert manager.post(url, {"action": "reset"}).status_code == 302
    assert [[s.site.code for s in r.sites] for r in rollout.status(release).rings] == [["PLA"], ["PLB"]]


def test_the_api_reports_the_rollout_of_an_rfcs_release(people, tiers):
    from tests.conftest import api_client_for

    pla, plb = tiers
    release = factories.release(people["dev"], "1.1.0")
    factories.rfc(people["dev"], pla, release=release)
    rfc_b = factories.rfc(people["dev"], plb, release=release)
    body = api_client_for(people["dev"]).get(f"/api/v1/rfcs/{rfc_b.uuid}/rollout/").json()
    assert body["release"] == "MES 1.1.0" and body["planned"] is False and body["halted"] == ""
    assert [(r["ring"], [s["site"] for s in r["sites"]]) for r in body["rings"]] == [
        (0, ["PLA"]),
        (1, ["PLB"]),
    ]
    assert (
        body["rings"][0]["sites"][0]["state"] == "waiting"
        and body["rings"][0]["sites"][0]["prod_version"] == "1.0.0"
    )
    assert "Ring 0 is not done" in body["rings"][1]["blocked"]
