"""Journey: an auditor filters the trail for one RFC and exports exactly that selection."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from releases.models import Rfc
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser


def test_auditor_filters_one_rfc_and_exports_it(page, portal):
    rfc = Rfc.objects.get(title="Scanner debounce on Berlin line 2")  # approved in the demo: a full history
    login(page, portal, "auditor", demo_password())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_test_id("verification")).to_be_visible()
    page.get_by_label("Object (RFC number)").fill(rfc.number)
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_test_id("audit-row")
    expect(rows.first).to_be_visible()
    count = rows.count()
    assert count >= 5
    for text in rows.all_inner_texts():
        assert rfc.number in text
    expect(page.get_by_test_id("audit-table")).to_contain_text("approvals.signature.approved")
    screenshot(page, "audit-filtered")

    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    assert download.suggested_filename.startswith("audit-trail-") and download.suggested_filename.endswith(
        ".csv"
    )
    table = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(table) == count and {row["object_id"] for row in table} == {rfc.number}
    assert [int(r["seq"]) for r in table] == sorted(int(r["seq"]) for r in table)
