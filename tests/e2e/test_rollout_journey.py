"""Journey (E10): the demo's MES 2.4.1 rolls out in two rings — the demo line (the pilot), then the
label service. The label service is refused until the pilot succeeded in PROD, its review is done and
its soak time has passed; then the release manager books it with the slot picker.

The pilot's deployment is moved along its states here as the engine would (the engine's own journey
runs a real worker); time is moved by moving the pilot's finish back past the soak, never by waiting.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from core import clock
from deployments.models import Deployment, DeploymentState
from deployments.states import move
from releases.models import Rfc
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser

PILOT = "Label layout v2 on the demo line"
RING_ONE = "Label layout v2 on the label service"


def book_first_slot(page, portal, rfc) -> None:
    page.goto(f"{portal}/rfcs/{rfc.uuid}/")
    page.get_by_role("link", name="Schedule PROD…").click()
    page.get_by_test_id("slot").first.click()
    expect(page.get_by_test_id("rfc-state")).to_have_text("Scheduled")


def test_a_release_rolls_out_to_the_pilot_then_ring_one_after_the_soak(page, portal):
    pilot, ring_one = Rfc.objects.get(title=PILOT), Rfc.objects.get(title=RING_ONE)
    login(page, portal, "releasemgr", demo_password())

    page.goto(f"{portal}/rfcs/{ring_one.uuid}/")
    readiness = page.locator("#readiness")
    expect(readiness).to_contain_text("Release rings")
    expect(readiness).to_contain_text("OPEN has not run MES 2.4.1 in PROD successfully yet")
    page.get_by_role("link", name="Schedule PROD…").click()
    page.get_by_test_id("slot").first.click()
    expect(page.get_by_test_id("schedule-refusal")).to_contain_text(
        "Ring 0 is not done: OPEN has not run MES 2.4.1"
    )
    screenshot(page, "rollout-ring-one-refused")
    page.goto(f"{portal}/rfcs/{ring_one.uuid}/")
    page.get_by_test_id("rollout-link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Rollout of MES 2.4.1")
    expect(page.get_by_test_id("ring-0-start")).to_contain_text("May start now.")
    expect(page.get_by_test_id("ring-1-start")).to_contain_text("May not start")
    expect(page.get_by_test_id("rollout-site-LBL")).to_contain_text("Not scheduled")
    screenshot(page, "rollout-waiting-for-the-pilot")

    # Ring 0: the pilot is booked with the slot picker and the engine takes it to success.
    book_first_slot(page, portal, pilot)
    deployment = Deployment.objects.get(rfc=pilot, environment__tier="PROD")
    move(deployment, DeploymentState.RUNNING, started_at=clock.now())
    move(deployment, DeploymentState.VERIFYING)
    move(deployment, DeploymentState.SUCCEEDED, finished_at=clock.now(), outcome="Deployed and verified.")

    page.goto(f"{portal}/rfcs/{pilot.uuid}/")
    expect(page.get_by_test_id("rfc-state")).to_have_text("Deployed")
    review = page.get_by_test_id("review")
    review.get_by_label("What happened").fill("Labels print with the bigger batch number on line 1.")
    review.get_by_role("button", name="Complete the review only").click()
    expect(page.get_by_test_id("review")).to_contain_text("Successful")

    page.goto(f"{portal}/rfcs/releases/{pilot.release.uuid}/rollout/")
    expect(page.get_by_test_id("rollout-site-OPEN")).to_contain_text("Succeeded")
    expect(page.get_by_test_id("ring-1-start")).to_contain_text("May start from")
    screenshot(page, "rollout-pilot-soaking")
    page.goto(f"{portal}/rfcs/{ring_one.uuid}/")
    expect(page.locator("#readiness")).to_contain_text("Ring 0 soaks until")

    # The soak passes (the pilot finished 31 minutes ago; the demo soaks 30).
    Deployment.objects.filter(pk=deployment.pk).update(finished_at=clock.now() - timedelta(minutes=31))
    page.goto(f"{portal}/rfcs/releases/{pilot.release.uuid}/rollout/")
    expect(page.get_by_test_id("ring-1-start")).to_contain_text("May start now.")
    book_first_slot(page, portal, ring_one)
    page.get_by_test_id("rollout-link").click()
    expect(page.get_by_test_id("rollout-site-LBL")).to_contain_text("Scheduled")
    screenshot(page, "rollout-ring-one-booked")
    assert Deployment.objects.get(rfc=ring_one, environment__tier="PROD").state == DeploymentState.SCHEDULED

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("ring-1")).to_be_visible()
    screenshot(page, "rollout-phone")

    # The change-advisory week lists the booked ring-1 change with its model and gates.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{portal}/rfcs/")
    page.get_by_role("link", name="Change advisory (week ahead)").click()
    expect(page.get_by_test_id("cab-site-LBL")).to_contain_text(ring_one.number)
    screenshot(page, "change-advisory-week")
