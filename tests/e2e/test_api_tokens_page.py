"""The API tokens page in a browser: reached from the user menu, a token made and shown once, listed,
revoked; on a desktop and a phone viewport (screenshots under test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from accounts.models import ApiToken
from core.roles import Role
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import screenshot, submit_login

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(live_server, transactional_db) -> str:
    make_user("dev", Role.DEVELOPER)
    return live_server.url.rstrip("/")


def test_make_list_and_revoke_a_token(page, portal):
    from playwright.sync_api import expect

    submit_login(page, portal, "dev", PASSWORD)
    page.wait_for_url(f"{portal}/")
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", level=1)).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()

    page.get_by_label("Name").fill("Nightly pipeline")
    page.get_by_label("Valid for (days)").fill("30")
    page.get_by_role("button", name="Make token").click()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert len(secret) >= 40 and ApiToken.objects.get().prefix == secret[:8]
    expect(page.get_by_test_id("token-secret")).to_contain_text("shown only this once")
    expect(page.get_by_test_id("token-list")).to_contain_text("Nightly pipeline")
    screenshot(page, "accounts-tokens-made")

    page.get_by_label("Name").fill("Report export")
    page.get_by_role("button", name="Make token").click()
    page.goto(f"{portal}/accounts/tokens/")
    page.get_by_role("button", name="Revoke the token Report export").click()
    expect(page.get_by_role("status").first).to_contain_text("is revoked")
    expect(page.get_by_test_id("token-list")).to_contain_text("revoked")
    screenshot(page, "accounts-tokens-list")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot(page, "accounts-tokens-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
