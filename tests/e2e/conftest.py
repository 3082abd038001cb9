"""Browser-test infrastructure: one chromium per session, a page per test, the demo on a live server.

Every test module here sets `pytestmark = pytest.mark.browser`, so the tests skip without Debian's
chromium or Playwright (and fail instead when REQUIRE_SERVICES names "browser", tests/conftest.py).

Data: the live server runs in another thread with its own database connection, so it only sees
committed rows. `demo_data` therefore runs `manage.py demo` under `transactional_db` (real commits,
a flush after the test; on PostgreSQL the flush passes the audit table's append-only trigger
through the patch in tests/conftest.py).

Static files: pytest-django's live server wraps the site in
`django.contrib.staticfiles.handlers.StaticFilesHandler` (StaticLiveServerTestCase semantics),
which serves /static/ from the finders, so portal.css and vendor/htmx.min.js load without
collectstatic; tests/conftest.py switches the storage to plain StaticFilesStorage so `{% static %}`
needs no manifest. test_roles.py asserts the stylesheet and htmx actually arrived.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import CHROMIUM

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-artifacts" / "screenshots"
DEFAULT_TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1280, "height": 900}


def demo_password() -> str:
    """The demo users' password, read the way `manage.py demo` reads it."""
    return os.environ.get("DEMO_PASSWORD") or "demo"


# --- Browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole session (Debian's, not a Playwright download)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so `page` can screenshot a failed test."""
    report = yield
    setattr(item, f"_e2e_report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A fresh context (own cookies) and page, 1280x900, 10 s default timeout."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    browser_page = context.new_page()
    # Confirmation dialogs (forms with data-confirm) are answered "OK", as the person who clicked meant.
    browser_page.on("dialog", lambda dialog: dialog.accept())
    yield browser_page
    report = getattr(request.node, "_e2e_report_call", None)
    if report is not None and report.failed:
        with contextlib.suppress(Exception):  # a dead page must not hide the test's own failure
            screenshot(browser_page, "FAILED-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name))
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG to test-artifacts/screenshots/<name>.png (git-ignored) and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- Data and server ----------------------------------------------------------------------------
@pytest.fixture
def demo_data(transactional_db):
    """The demo sites, environments, releases and one user per role, committed for the live server."""
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def portal(live_server, demo_data) -> str:
    """Base URL (no trailing slash) of the live portal with the demo loaded."""
    return live_server.url.rstrip("/")


# --- Helpers ------------------------------------------------------------------------------------
def submit_login(page, base_url: str, username: str, password: str) -> None:
    """Open the login page, fill the form by its labels and submit it (no assumption on the outcome)."""
    page.goto(f"{base_url}/accounts/login/")
    # By the fields' ids, not their labels: the same helper signs in on an English or a German page.
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("form:has(#id_password) button[type=submit]").click()
    page.wait_for_load_state()


def login(page, base_url: str, username: str, password: str) -> None:
    """Log in through the form and wait for the home page."""
    submit_login(page, base_url, username, password)
    page.wait_for_url(f"{base_url}/")


def logout(page) -> None:
    """Log out through the user menu and wait for the login page."""
    page.locator(".usermenu form[action$='/logout/'] button").click()
    page.wait_for_url("**/accounts/login/")
