"""Commenting with a mention on the RFC page, desktop and phone (screenshots under
test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from core.roles import Role
from discussion.models import Comment
from notify.models import Watcher
from tests import factories
from tests.conftest import PASSWORD, make_site, make_user
from tests.e2e.conftest import screenshot, submit_login

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_comment_with_a_mention_lands_in_the_timeline(browser, live_server, transactional_db, viewport):
    from playwright.sync_api import expect

    portal = live_server.url.rstrip("/")
    site = make_site("PLA")
    dev = make_user("dev", Role.DEVELOPER)
    make_user("releasemgr", Role.RELEASE_MANAGER)
    rfc = factories.rfc(dev, site)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        submit_login(page, portal, "releasemgr", PASSWORD)
        page.goto(f"{portal}/rfcs/{rfc.uuid}/")
        page.get_by_label("Comment", exact=True).fill(
            "@dev which printers were in the UAT run?\nLine 2 only?"
        )
        page.get_by_role("button", name="Comment", exact=True).click()
        expect(page.get_by_text("Comment added. Told: dev.")).to_be_visible()
        expect(page.get_by_test_id("comment")).to_contain_text("which printers were in the UAT run?")
        page.get_by_test_id("comment").scroll_into_view_if_needed()
        screenshot(page, f"rfc-comment-{viewport['width']}")
        assert Comment.objects.get().mentions == ["dev"]
        assert Watcher.objects.filter(rfc=rfc, user__username="releasemgr").exists()
    finally:
        context.close()
