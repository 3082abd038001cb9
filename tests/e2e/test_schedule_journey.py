"""Journey: a release manager schedules the demo's approved RFC with the slot picker after
the portal refused a Friday start and listed every reason (W1–W5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from deployments.models import Deployment
from releases.models import Rfc
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser


def next_friday_10(tz: ZoneInfo) -> str:
    today = datetime.now(tz).date() + timedelta(days=1)
    while today.weekday() != 4:
        today += timedelta(days=1)
    return f"{today:%Y-%m-%d}T10:00"


def test_schedule_with_the_slot_picker_after_a_refusal(page, portal):
    rfc = Rfc.objects.get(title="Scanner debounce on Berlin line 2")  # the demo's approved patch
    login(page, portal, "releasemgr", demo_password())
    page.get_by_test_id("home-schedule").get_by_role("link", name=rfc.number).click()
    page.get_by_role("link", name="Schedule PROD…").click()
    expect(page.get_by_test_id("slot").first).to_be_visible()

    page.get_by_label("Start (site's local time)").fill(next_friday_10(ZoneInfo("Europe/Berlin")))
    page.get_by_role("button", name="Schedule at the typed start").click()
    refusal = page.get_by_test_id("schedule-refusal")
    expect(refusal).to_contain_text("Friday")
    expect(refusal).to_contain_text("no deployment window on Fridays")
    screenshot(page, "schedule-refused")

    # htmx: a longer deployment changes the offered slots without a reload.
    page.get_by_label("Deployment duration (minutes)").fill("75")
    page.get_by_label("Deployment duration (minutes)").press("Tab")
    expect(page.get_by_test_id("slots")).to_contain_text("75 min + 15 min smoke test")
    first = page.get_by_test_id("slot").first
    label = first.inner_text()
    screenshot(page, "schedule-slots")
    first.click()

    expect(page.get_by_test_id("rfc-state")).to_have_text("Scheduled")
    parts = label.split()  # "Tue 1 Dec 09:00–10:45 CET"
    expect(page.get_by_test_id("deployments")).to_contain_text(f"{' '.join(parts[:3])} ")
    expect(page.get_by_test_id("deployments")).to_contain_text(parts[3].split("–")[0])
    screenshot(page, "rfc-scheduled")
    deployment = Deployment.objects.get(rfc=rfc, environment__tier="PROD")
    assert deployment.duration_minutes == 75 and deployment.environment.tier == "PROD"
    assert deployment.scheduled_start.astimezone(ZoneInfo("Europe/Berlin")).weekday() in (1, 2, 3)
