"""The RFC list's saved filters and XLSX export in a real browser (issue 17 item 3): a release
manager filters the demo's RFCs, saves the filter for everyone, another person opens it, and the
XLSX download holds exactly the rows the page lists."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.e2e.conftest import demo_password, login, logout, screenshot

pytestmark = pytest.mark.browser


def test_a_saved_shared_filter_and_its_xlsx_export(page, portal):
    login(page, portal, "releasemgr", demo_password())
    page.goto(f"{portal}/rfcs/?site=BER&sort=title")
    rows = page.get_by_test_id("rfc-row")
    expect(rows.first).to_be_visible()
    listed = [text.split()[0] for text in rows.all_inner_texts()]
    page.get_by_text("Save this filter").click()
    page.get_by_label("Name").fill("Berlin, by title")
    page.get_by_label("Share with everyone").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Saved the filter “Berlin, by title” for everyone.")
    expect(page.get_by_test_id("saved-filter")).to_have_text("Berlin, by title")
    screenshot(page, "rfc-list-saved-filter")

    with page.expect_download() as download_info:
        page.get_by_test_id("export-xlsx").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.path()).read_bytes()))["RFCs"]
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == listed

    logout(page)
    login(page, portal, "auditor", demo_password())
    page.goto(f"{portal}/rfcs/")
    page.get_by_test_id("saved-filter").click()
    expect(page.get_by_test_id("rfc-row")).to_have_count(len(listed))
    expect(page.get_by_test_id("saved-filters")).to_contain_text("shared by Rita Mendes")
    screenshot(page, "rfc-list-shared-filter")
