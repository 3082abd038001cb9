"""An approver on a phone (390x844): the first sign-in sets up two-step sign-in (QR code, typed key,
a code, recovery codes); the next sign-in asks for the code; the decide page asks for the password
and a fresh code, and the signature is recorded.

The code is computed, as the approver's app would, from the key the enrolment page shows, at a clock
the test moves by one time step between uses (a code signs in or signs once)."""

from __future__ import annotations

import time
from base64 import b32decode
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_otp.oath import TOTP
from playwright.sync_api import expect

from approvals.models import Approval, ApprovalState, Signature
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS, SCREENSHOT_DIR, demo_password, screenshot
from tests.factories import SIGNERS

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
APPROVERS = [
    "it_manager",
    "operations_manager",
    "cio",
    "plant_director",
    "key_user",
    "release_manager",
    "admin",
]


def app_code(secret: str) -> str:
    totp = TOTP(b32decode(secret.replace(" ", "")))
    totp.time = time.time()
    return f"{totp.token():06d}"


def sign_in(page, portal: str, path: str, username: str) -> None:
    page.goto(f"{portal}{path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(demo_password())
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_an_approver_enrols_signs_in_with_a_code_and_signs_on_a_phone(browser, portal, settings):
    settings.MFA_REQUIRED_ROLES = APPROVERS
    approval = (
        Approval.objects.select_related("rfc").filter(state=ApprovalState.PENDING).order_by("pk").first()
    )
    assert approval is not None, "the demo has an RFC waiting for a signature"
    username = SIGNERS[approval.role]
    decide = f"/approvals/{approval.pk}/"
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        with time_machine.travel(datetime.now(UTC), tick=True) as clock:
            # First sign-in: enrolment comes before the page asked for.
            sign_in(page, portal, decide, username)
            expect(page).to_have_url(f"{portal}/accounts/mfa/setup/?next=%2Fapprovals%2F{approval.pk}%2F")
            expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-step sign-in")
            expect(page.locator(".qr svg")).to_be_visible()
            expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
            screenshot(page, "mfa-enrol-phone")
            secret = page.get_by_test_id("mfa-secret").inner_text()
            page.get_by_label("Code from your authenticator app").fill(app_code(secret))
            page.get_by_role("button", name="Turn on two-step sign-in").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
            expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(10)
            screenshot(page, "mfa-recovery-codes-phone")
            page.get_by_role("link", name="I have stored them — continue").click()
            expect(page).to_have_url(f"{portal}{decide}")
            page.locator(".usermenu").get_by_role("button", name="Log out").click()
            page.wait_for_url("**/accounts/login/")

            # Next sign-in: the code page, then the page asked for.
            clock.shift(timedelta(seconds=30))
            sign_in(page, portal, decide, username)
            expect(page.get_by_role("heading", level=1)).to_have_text("Enter your sign-in code")
            screenshot(page, "mfa-code-phone")
            page.get_by_label("Code from your authenticator app").fill(app_code(secret))
            page.get_by_role("button", name="Continue").click()
            expect(page).to_have_url(f"{portal}{decide}")

            # The signature: decision, password and a fresh code, all in the first screen of the phone.
            code_field = page.get_by_label("Authenticator code")
            expect(code_field).to_be_visible()
            sign = page.get_by_role("button", name="Sign", exact=True)
            screenshot(page, "decide-phone")
            page.get_by_label("Approve").check()
            expect(page.get_by_label("Your password")).to_be_in_viewport()
            expect(code_field).to_be_in_viewport()
            expect(sign).to_be_in_viewport()
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT_DIR / "decide-phone-signature.png"))  # what the phone shows
            clock.shift(timedelta(seconds=30))
            page.get_by_label("Your password").fill(demo_password())
            code_field.fill(app_code(secret))
            sign.click()
            expect(page.get_by_text("Your signature is recorded.")).to_be_visible()
            assert Signature.objects.filter(approval=approval, signer__username=username).exists()
    finally:
        context.close()
