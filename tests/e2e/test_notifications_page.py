"""Notification settings and following an RFC in a browser, desktop and phone (screenshots under
test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from core.roles import Role
from notify.models import Mute, Preference, Watcher
from tests import factories
from tests.conftest import PASSWORD, make_site, make_user
from tests.e2e.conftest import screenshot, submit_login

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(live_server, transactional_db) -> str:
    return live_server.url.rstrip("/")


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_choose_how_to_hear_and_follow_an_rfc(browser, portal, viewport):
    from playwright.sync_api import expect

    site = make_site("PLA")
    dev = make_user("dev", Role.DEVELOPER)
    make_user("releasemgr", Role.RELEASE_MANAGER)
    rfc = factories.rfc(dev, site)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        submit_login(page, portal, "releasemgr", PASSWORD)
        page.wait_for_url(f"{portal}/")
        page.goto(f"{portal}/notifications/settings/")
        expect(page.get_by_role("heading", name="Notification settings", level=1)).to_be_visible()
        row = page.get_by_role("row", name="Deployment started")
        row.get_by_role("radio", name="Nothing").check()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()
        assert Preference.objects.get(kind="deployment.started").channel == "none"
        screenshot(page, f"notify-settings-{viewport['width']}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the settings page scrolls sideways ({width} px)"

        page.goto(f"{portal}/rfcs/{rfc.uuid}/")
        page.get_by_role("button", name="Follow this RFC").click()
        expect(page.get_by_role("button", name="Stop following")).to_be_visible()
        page.get_by_role("button", name="Mute").click()
        expect(page.get_by_test_id("follow")).to_contain_text("Muted")
        assert Watcher.objects.filter(rfc=rfc).count() == 1 and Mute.objects.filter(rfc=rfc).count() == 1
        screenshot(page, f"notify-rfc-follow-{viewport['width']}")
    finally:
        context.close()
