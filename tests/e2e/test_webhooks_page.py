"""A release manager adds a Teams/Slack/JSON webhook for a site, sends a test and reads the delivery
log, on a desktop and a phone (screenshots under test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from core.roles import Role
from hooks import delivery
from hooks.models import Webhook
from tests.conftest import PASSWORD, make_site, make_user
from tests.e2e.conftest import screenshot, submit_login
from tests.hooks.receiver import Receiver

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_add_a_webhook_send_a_test_and_read_the_log(browser, live_server, transactional_db, viewport):
    from playwright.sync_api import expect

    portal = live_server.url.rstrip("/")
    make_site("PLA")
    make_user("releasemgr", Role.RELEASE_MANAGER)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        with Receiver() as receiver:
            submit_login(page, portal, "releasemgr", PASSWORD)
            page.goto(f"{portal}/notifications/settings/")
            page.get_by_role("link", name="PLA", exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Webhooks of PLA")
            page.get_by_label("Name").fill("Line 2 Teams channel")
            page.get_by_label("Address (https://…)").fill(receiver.url)
            page.get_by_label("Format").select_option("teams")
            page.get_by_label("Deployment rolled back").check()
            page.get_by_role("button", name="Add webhook").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Line 2 Teams channel")
            page.get_by_role("button", name="Send test").click()
            expect(page.get_by_text("A test message is queued")).to_be_visible()
            assert delivery.deliver()["sent"] == 1
            page.reload()
            expect(page.get_by_test_id("deliveries")).to_contain_text("HTTP 200")
            screenshot(page, f"webhook-detail-{viewport['width']}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"the page scrolls sideways ({width} px)"
        assert Webhook.objects.get().events == ["deployment.rolled_back"]
        assert len(receiver.requests) == 1
    finally:
        context.close()
