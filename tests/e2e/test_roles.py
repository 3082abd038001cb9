"""Each demo user logs in and sees the navigation of their role, the portal version and
their own name; logging out leads back to the login page. A wrong password logs nobody in."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.version import __version__
from tests.e2e.conftest import demo_password, login, screenshot, submit_login

pytestmark = pytest.mark.browser

# Expected main navigation per demo user, from environments.access.navigation():
#   everyone: Home, RFCs, Calendar, Dashboard, [Approvals], Environments, ..., API
#   read_audit (Admin, Auditor): Audit trail
#   review_access (Admin, Auditor): Access review
#   admin_site (Admin): Administration
#   approver roles (IT Manager, Operations Manager, CIO, Plant Director): Approvals after Dashboard
BASE = ["Home", "RFCs", "Calendar", "Dashboard", "Environments"]
EXPECTED_NAV = {
    "dev": [*BASE, "API"],
    "tester": [*BASE, "API"],
    "itmanager": ["Home", "RFCs", "Calendar", "Dashboard", "Approvals", "Environments", "API"],
    "opsmanager": ["Home", "RFCs", "Calendar", "Dashboard", "Approvals", "Environments", "API"],
    "cio": ["Home", "RFCs", "Calendar", "Dashboard", "Approvals", "Environments", "API"],
    "plantdirector": ["Home", "RFCs", "Calendar", "Dashboard", "Approvals", "Environments", "API"],
    "releasemgr": [*BASE, "API"],
    "auditor": [*BASE, "Audit trail", "Access review", "API"],
    "admin": [*BASE, "Audit trail", "Access review", "Administration", "API"],
}
# Full names shown in the user menu (environments/management/commands/demo.py USERS).
FULL_NAMES = {
    "dev": "Dana Developer",
    "tester": "Tomas Tester",
    "itmanager": "Ingrid Ito",
    "opsmanager": "Omar Osei",
    "cio": "Carla Ivanova",
    "plantdirector": "Piet Dekker",
    "releasemgr": "Rita Mendes",
    "auditor": "Arun Udeh",
    "admin": "Alex Admin",
}


def nav_labels(page) -> list[str]:
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    return [label.strip() for label in nav.get_by_role("link").all_inner_texts()]


def expect_login_page(page, base_url: str) -> None:
    expect(page).to_have_url(f"{base_url}/accounts/login/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


@pytest.mark.parametrize("username", list(EXPECTED_NAV))
def test_role_navigation_version_and_logout(page, portal, username):
    login(page, portal, username, demo_password())

    # Styled page: portal.css and htmx arrived through the live server's static handler.
    assert page.evaluate(
        "() => document.styleSheets.length > 0 && document.styleSheets[0].cssRules.length > 0"
    )
    assert page.evaluate("() => typeof window.htmx === 'object'")
    expect(page.locator("header.topbar")).to_have_css("display", "flex")

    labels = nav_labels(page)  # compared last, so one wrong label does not hide the other checks
    expect(page.get_by_role("link", name="Home", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.get_by_test_id("portal-version")).to_have_text(f"v{__version__}")
    expect(page.locator(".usermenu .who strong")).to_have_text(FULL_NAMES[username])
    expect(page.get_by_role("heading", level=1)).to_contain_text(FULL_NAMES[username])
    screenshot(page, f"roles-{username}")

    page.locator(".usermenu").get_by_role("button", name="Log out").click()
    expect_login_page(page, portal)
    # The session is gone: the home page sends us back to the login page.
    page.goto(f"{portal}/")
    expect(page).to_have_url(f"{portal}/accounts/login/?next=/")

    assert labels == EXPECTED_NAV[username]


def test_wrong_password_shows_error_and_no_session(page, portal):
    submit_login(page, portal, "dev", demo_password() + "-wrong")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Please enter a correct username and password")
    expect(page.get_by_label("Username")).to_have_value("dev")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    expect(page.get_by_test_id("portal-version")).to_have_text(f"v{__version__}")
    screenshot(page, "login-failed")

    assert "sessionid" not in {cookie["name"] for cookie in page.context.cookies()}
    page.goto(f"{portal}/")
    expect(page).to_have_url(f"{portal}/accounts/login/?next=/")
