"""The portal in German, as a browser set to German gets it: a manager approves from the mailed link on
a phone, and a release manager reads the Berlin calendar and an RFC — German words, German dates
(Dienstag, 04.05.2027), screenshots kept. Expected words are looked up in the German catalog."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.utils import translation
from playwright.sync_api import expect

from approvals import mail
from approvals.models import Approval, ApprovalState, Signature
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.conftest import demo_password, login, screenshot
from tests.e2e.test_calendar_page import NOW, plant_week  # noqa: F401 (a fixture)
from workflow import services as wf

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def de(text: str) -> str:
    with translation.override("de"):
        translated = translation.gettext(text)
    assert translated != text, f"{text!r} has no German translation"
    return translated


def test_a_manager_approves_in_german_on_a_phone(
    browser, people, site_a, live_server, settings, transactional_db
):
    settings.SITE_URL = live_server.url
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    link = mail.issue_link(Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING), people["itmanager"])
    context = browser.new_context(viewport=PHONE, locale="de-DE")
    page = context.new_page()
    try:
        page.goto(link)
        assert page.evaluate("document.documentElement.lang") == "de"
        page.locator("#id_username").fill("itmanager")
        page.locator("#id_password").fill(PASSWORD)
        page.locator("form:has(#id_password) button[type=submit]").click()
        expect(page.get_by_test_id("sign-form")).to_be_visible()
        screenshot(page, "decide-from-mail-390-de")
        sign = page.get_by_role("button", name=de("Sign"), exact=True)
        box = sign.bounding_box()
        assert box["y"] + box["height"] <= PHONE["height"], "the German Sign button is in the first screen"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.get_by_role("radio", name=de("Approve")).check()
        page.locator("[data-testid=sign-form] input[type=password]").fill(PASSWORD)
        sign.click()
        with translation.override("de"):
            approved = str(RfcState.APPROVED.label)
        expect(page.get_by_test_id("rfc-state")).to_have_text(approved)
        assert Signature.objects.get(rfc=rfc).meaning.startswith("approved as")  # the record stays English
        assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    finally:
        context.close()


def test_the_berlin_calendar_and_an_rfc_in_german(browser, portal, plant_week):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    page = context.new_page()
    try:
        with time_machine.travel(NOW, tick=True):
            login(page, portal, "releasemgr", demo_password())
            page.goto(f"{portal}/environments/calendar/BER/")
            assert page.evaluate("document.documentElement.lang") == "de"
            week = page.get_by_test_id("calendar-week")
            # Tuesday 4 May 2027 in Berlin, in German, with today marked.
            expect(week.get_by_role("region", name=re.compile(r"^Dienstag,? 4\.? Mai 2027"))).to_be_visible()
            expect(page.get_by_role("heading", level=1)).to_contain_text(de("Change calendar"))
            screenshot(page, "calendar-week-de")
            page.goto(f"{portal}/environments/calendar/BER/?view=month")
            expect(page.get_by_test_id("calendar-heading")).to_have_text("Mai 2027")
            screenshot(page, "calendar-month-de")

            page.goto(f"{portal}/rfcs/{plant_week['planned'].rfc.uuid}/")
            expect(page.get_by_role("heading", name=de("Summary"))).to_be_visible()
            filed = page.locator("dt", has_text=de("Filed")).locator("xpath=following-sibling::dd[1]")
            expect(filed).to_have_text(re.compile(r"^\d\d\.\d\d\.\d{4} \d\d:\d\d UTC$"))
            screenshot(page, "rfc-page-de")
    finally:
        context.close()
