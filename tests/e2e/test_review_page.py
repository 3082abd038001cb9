"""After a rollback, in a browser: the home page points the author to the ended change, the RFC page
takes the review, then offers the next steps; attaching a fixed release returns the RFC to draft.
Desktop and phone (screenshots under test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from core.roles import Role
from deployments.states import DeploymentState as S
from deployments.states import move
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, make_site, make_user
from tests.e2e.conftest import screenshot, submit_login
from workflow.models import Review

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_review_then_attach_a_fixed_release(browser, live_server, transactional_db, viewport):
    from playwright.sync_api import expect

    portal = live_server.url.rstrip("/")
    site = make_site("PLA")
    dev = make_user("dev", Role.DEVELOPER)
    rm = make_user("releasemgr", Role.RELEASE_MANAGER)
    rfc = factories.rfc(dev, site, title="Raise label printer timeout")
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SCHEDULED)
    deployment = factories.booking(rfc, site, rm)
    for target in (S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK):
        move(deployment, target, outcome="Smoke test failed at T+15: label service did not answer.")
    factories.release(dev, "1.0.2")
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        submit_login(page, portal, "dev", PASSWORD)
        ended = page.get_by_test_id("home-ended")
        expect(ended).to_contain_text("review due")
        ended.get_by_role("link", name=rfc.number).click()
        review = page.get_by_test_id("review")
        expect(review.get_by_label("Rolled back")).to_be_checked()
        review.get_by_label("What happened").fill("The label service did not answer the smoke test.")
        review.get_by_label("Follow-ups").fill("Add a readiness probe to the label service.")
        screenshot(page, f"rfc-review-{viewport['width']}")
        review.get_by_role("button", name="Complete the review only").click()
        expect(page.get_by_text(f"The review of {rfc.number} is complete")).to_be_visible()
        steps = page.get_by_test_id("next-steps")
        expect(steps.get_by_label("Fixed release")).to_contain_text("MES 1.0.2")
        steps.get_by_label("What the fix changes").fill("Timeout raised to 30 s; probe added.")
        steps.scroll_into_view_if_needed()
        screenshot(page, f"rfc-next-steps-{viewport['width']}")
        steps.get_by_role("button", name="Attach and return to draft").click()
        expect(page.get_by_text(f"{rfc.number} is now draft.")).to_be_visible()
        expect(page.locator(".facts").first).to_contain_text("MES 1.0.2")
        assert Rfc.objects.get(pk=rfc.pk).state == RfcState.DRAFT
        assert str(Rfc.objects.get(pk=rfc.pk).release) == "MES 1.0.2"
        assert Review.objects.get(rfc=rfc).close_code == "rolled_back"
    finally:
        context.close()
