"""The release manager opens the change calendar, week and month, across sites and for BER.

The clock is moved to Tuesday 4 May 2027 (Berlin): Thursday 6 May is Ascension Day there, Friday
is blocked, and the demo's PROD deployments below land in the same week.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from deployments.models import Deployment
from environments.models import Environment, Freeze
from releases.models import Rfc
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser

NOW = datetime(2027, 5, 4, 7, 30, tzinfo=UTC)  # Tuesday 09:30 in Berlin, 02:30 in Chicago


def _deploy(rfc, code: str, start: datetime, *, emergency: bool = False) -> Deployment:
    from django.contrib.auth.models import User

    return Deployment.objects.create(
        rfc=rfc,
        environment=Environment.objects.get(site__code=code, tier="PROD"),
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=75),
        duration_minutes=45,
        emergency=emergency,
        scheduled_by=User.objects.get(username="releasemgr"),
    )


@pytest.fixture
def plant_week(portal):
    rfcs = list(Rfc.objects.order_by("number")[:3])
    assert len(rfcs) == 3, "the demo seeds RFCs"
    planned = _deploy(rfcs[0], "BER", datetime(2027, 5, 4, 12, 30, tzinfo=UTC))  # 14:30 CEST
    urgent = _deploy(rfcs[1], "BER", datetime(2027, 5, 5, 17, 0, tzinfo=UTC), emergency=True)  # 19:00 CEST
    chicago = _deploy(rfcs[2], "CHI", datetime(2027, 5, 5, 14, 0, tzinfo=UTC))  # 09:00 CDT
    Freeze.objects.create(
        site=Environment.objects.get(site__code="BER", tier="PROD").site,
        name="Press line retrofit",
        reason="Line 3 rebuilt by the vendor",
        starts_at=datetime(2027, 5, 5, 6, 0, tzinfo=UTC),
        ends_at=datetime(2027, 5, 5, 12, 0, tzinfo=UTC),
    )
    return {"planned": planned, "urgent": urgent, "chicago": chicago}


def test_release_manager_reads_the_plant_week_and_month(page, portal, plant_week):
    with time_machine.travel(NOW, tick=True):
        login(page, portal, "releasemgr", demo_password())
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()

        # Across sites: both plants, each event in its own local time.
        expect(page.get_by_role("heading", level=1)).to_contain_text("Change calendar")
        expect(page.get_by_test_id("calendar-heading")).to_have_text("Week of 3 May – 9 May 2027")
        week = page.get_by_test_id("calendar-week")
        expect(week.get_by_text(plant_week["chicago"].rfc.number)).to_be_visible()
        expect(week.get_by_text(plant_week["planned"].rfc.number)).to_be_visible()
        expect(week.get_by_text("09:00–10:15 CDT")).to_be_visible()
        screenshot(page, "calendar-all-sites")

        # Berlin's week: today highlighted, the holiday and the Friday shaded, the emergency marked.
        page.get_by_role("navigation", name="Sites").get_by_role("link", name="BER").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("BER")
        week = page.get_by_test_id("calendar-week")
        today = week.get_by_role("region", name="Tuesday 4 May 2027 (today)")
        expect(today).to_have_class("cal-day cal-today")
        expect(today.get_by_role("link", name=plant_week["planned"].rfc.number)).to_be_visible()
        expect(today.get_by_text("14:30–15:45")).to_be_visible()
        wednesday = week.get_by_role("region", name="Wednesday 5 May 2027")
        expect(wednesday.locator(".cal-emergency-badge")).to_have_text("Emergency")
        expect(wednesday.get_by_text("Freeze: Press line retrofit")).to_be_visible()
        thursday = week.get_by_role("region", name="Thursday 6 May 2027")
        expect(thursday).to_have_class("cal-day cal-day-blocked")
        expect(thursday.get_by_text("Holiday: Ascension Day")).to_be_visible()
        expect(week.get_by_role("region", name="Friday 7 May 2027")).to_have_class("cal-day cal-day-blocked")
        expect(page.get_by_test_id("ics-link")).to_be_visible()
        screenshot(page, "calendar-week")

        # The month: a grid of May with compact entries; the RFC link opens the RFC.
        page.get_by_role("group", name="View").get_by_role("link", name="Month").click()
        expect(page.get_by_test_id("calendar-heading")).to_have_text("May 2027")
        month = page.get_by_test_id("calendar-month")
        expect(month.get_by_role("row")).to_have_count(7)  # the weekday header and six weeks (26 Apr – 6 Jun)
        expect(month.locator(".cal-emergency-badge")).to_have_count(1)
        expect(month.get_by_text("Holiday: Ascension Day")).to_be_visible()
        expect(month.get_by_text("Holiday: Pentecost Monday")).to_be_visible()
        screenshot(page, "calendar-month")

        page.get_by_role("group", name="Period").get_by_role("link", name="Next →").click()
        expect(page.get_by_test_id("calendar-heading")).to_have_text("June 2027")
        page.get_by_role("group", name="Period").get_by_role("link", name="Today").click()
        expect(page.get_by_test_id("calendar-heading")).to_have_text("May 2027")

        month = page.get_by_test_id("calendar-month")
        month.get_by_role("link", name=plant_week["planned"].rfc.number).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(plant_week["planned"].rfc.title)
