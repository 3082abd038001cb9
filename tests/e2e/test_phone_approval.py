"""Approving from the email on a phone (issue 15 item 4): the mailed link, one sign-in on the way, and
the decision, the password and the Sign button inside the first 390×844 screen; one password entry."""

from __future__ import annotations

import pytest

from approvals import mail
from approvals.models import Approval, ApprovalState, Signature
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot
from workflow import services as wf

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def requested(people, site_a, live_server, settings, transactional_db):
    settings.SITE_URL = live_server.url
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)
    return rfc, mail.issue_link(approval, people["itmanager"])


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1366, "height": 768}])
def test_sign_from_the_mailed_link_in_the_first_screen(browser, requested, viewport):
    from playwright.sync_api import expect

    rfc, link = requested
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        page.goto(link)
        page.get_by_label("Username").fill("itmanager")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("sign-form")).to_be_visible()
        assert page.evaluate("window.scrollY") == 0
        screenshot(page, f"decide-from-mail-{viewport['width']}")
        sign = page.get_by_role("button", name="Sign", exact=True).bounding_box()
        assert sign["y"] + sign["height"] <= viewport["height"], f"Sign ends at {sign['y'] + sign['height']}"
        password = page.get_by_label("Your password").bounding_box()
        assert password["y"] + password["height"] <= viewport["height"]
        for choice in ("Approve", "Request changes", "Reject"):
            assert not page.get_by_role("radio", name=choice).is_checked()
        page.get_by_role("radio", name="Approve").check()
        page.get_by_label("Your password").fill(PASSWORD)  # the one password entry of the signature
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.get_by_test_id("rfc-state")).to_have_text("Approved")
        signature = Signature.objects.get(rfc=rfc)
        assert signature.via == "email" and signature.signer.username == "itmanager"
        assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    finally:
        context.close()
