"""Journey (issue 16 item 2): an admin proposes a standard change for routine label work, the IT
manager signs it with the password, and a developer's matching RFC is approved by it without the
chain — the readiness gates still shown and still judged."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from approvals.models import StandardChange, StandardChangeUse
from core import clock
from environments.models import Site
from releases.models import Rfc
from tests import factories
from tests.e2e.conftest import demo_password, login, logout, screenshot

pytestmark = pytest.mark.browser


def test_a_routine_change_goes_through_a_standard_change(page, portal):
    password = demo_password()
    login(page, portal, "admin", password)
    page.goto(f"{portal}/approvals/standard/")
    propose = page.locator("#propose")
    propose.get_by_label("Name").fill("Pallet label swap")
    propose.get_by_label("Description").fill(
        "Swap one label template on the label line; the printer service restarts."
    )
    propose.get_by_label("Products").fill("MES")
    propose.get_by_label(re.compile("LBL —")).check()
    propose.get_by_label("Highest class of change").select_option("patch")
    propose.get_by_label("Expires on").fill(f"{clock.now() + timedelta(days=180):%Y-%m-%d}")
    screenshot(page, "standard-change-propose")
    propose.get_by_role("button", name="Propose for approval").click()
    expect(page.get_by_test_id("standard-state")).to_have_text("Awaiting approval")
    logout(page)

    login(page, portal, "itmanager", password)
    page.goto(f"{portal}/approvals/")
    page.get_by_role("link", name="Standard changes").click()
    page.get_by_role("link", name="Pallet label swap").click()
    page.get_by_label("Your password").fill(password)
    page.get_by_role("button", name="Sign the template").click()
    expect(page.get_by_test_id("standard-state")).to_have_text("Active")
    expect(page.get_by_test_id("standard-signatures")).to_contain_text("IT Manager: Ingrid Ito")
    screenshot(page, "standard-change-active")
    logout(page)

    # A patch for the label service: proven on DEV (LBL has no UAT), signed off by the key user.
    dev, tester = User.objects.get(username="dev"), User.objects.get(username="tester")
    lbl = Site.objects.get(code="LBL")
    release = factories.release(dev, "2.3.3")
    rfc = factories.ready_rfc(dev, tester, lbl, release=release, title="Pallet label template v7")

    login(page, portal, "dev", password)
    page.goto(f"{portal}/rfcs/{rfc.uuid}/")
    offer = page.get_by_test_id("standard-submit")
    expect(offer).to_contain_text("pre-approved standard change")
    screenshot(page, "standard-change-offered")
    offer.get_by_label("Standard change").select_option(
        str(StandardChange.objects.get(name="Pallet label swap").uuid)
    )
    offer.get_by_role("button", name="Submit as a standard change").click()
    expect(page.get_by_test_id("rfc-state")).to_have_text("Approved")
    expect(page.get_by_test_id("gate").filter(has_text="Approvals complete")).to_contain_text(
        "standard change Pallet label swap"
    )
    screenshot(page, "standard-change-approved-rfc")
    template = StandardChange.objects.get(name="Pallet label swap")
    assert StandardChangeUse.objects.get(template=template).rfc == Rfc.objects.get(pk=rfc.pk)
    page.goto(f"{portal}/approvals/standard/{template.uuid}/")
    expect(page.get_by_test_id("standard-uses")).to_contain_text(rfc.number)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot(page, "standard-change-phone")
