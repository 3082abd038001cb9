"""The Berlin PROD page in a browser: the terminals the demo's BER line reported, the one left behind
first, axe-clean, on a desktop and a phone (issue 19 item 6)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_password, login, screenshot
from tests.e2e.judges import axe, missing_judges

pytestmark = pytest.mark.browser


def test_the_release_manager_sees_the_terminal_left_behind(page, portal):
    login(page, portal, "releasemgr", demo_password())
    page.goto(f"{portal}/environments/BER/PROD/")
    section = page.get_by_test_id("terminals")
    expect(section.get_by_test_id("terminals-summary")).to_have_text(
        "2 of 3 terminals run the active version."
    )
    stale = section.get_by_test_id("stale-terminal")
    expect(stale).to_have_count(1)
    expect(stale).to_contain_text("line2-label-station")
    expect(section.get_by_test_id("terminal-rows").locator("tbody tr").first).to_contain_text("not updated")
    screenshot(page, "environment-terminals")
    if missing_judges() is None:
        assert axe(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "environment-terminals-phone")
