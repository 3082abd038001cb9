"""The auditor's periodic review and traceability matrix in a real browser (issue 17 items 4 and 5):
draw up last month's review for the demo, read it, sign it with the password, download the PDF;
open the traceability matrix of a kept run."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from reports.models import TraceabilityRun
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser


def test_an_auditor_draws_up_and_signs_a_periodic_review(page, portal, demo_data):
    login(page, portal, "auditor", demo_password())
    page.goto(f"{portal}/audit/")
    page.get_by_role("link", name="Periodic reviews").click()
    page.get_by_role("button", name="Draw up").click()
    expect(page.get_by_test_id("review-state")).to_have_text("Draft")
    expect(page.get_by_test_id("review-chain")).to_contain_text("Audit trail")
    page.get_by_label("Conclusion").fill("Demo month reviewed: no incident, access as expected.")
    page.get_by_label("Your password").fill(demo_password())
    page.get_by_role("button", name="Sign the review").click()
    expect(page.get_by_test_id("review-state")).to_have_text("Signed")
    expect(page.get_by_test_id("review-signature")).to_contain_text("Signed electronically by Arun Udeh")
    screenshot(page, "periodic-review-signed")
    with page.expect_download() as download_info:
        page.get_by_test_id("review-pdf").click()
    assert Path(download_info.value.path()).read_bytes().startswith(b"%PDF")


def test_the_traceability_matrix_page(page, portal, demo_data):
    TraceabilityRun.objects.create(
        commit="0" * 40,
        portal_version="0.0.0",
        suites=["junit-embedded"],
        cases=[
            {"test": "tests.a::test_window", "suite": "junit-embedded", "outcome": "passed", "reqs": ["W1"]},
            {
                "test": "tests.a::test_handover",
                "suite": "junit-embedded",
                "outcome": "failed",
                "reqs": ["W3"],
            },
        ],
    )
    login(page, portal, "auditor", demo_password())
    page.goto(f"{portal}/audit/traceability/")
    expect(page.get_by_test_id("trace-summary")).to_contain_text(
        "43: 1 passing, 1 failing, 0 not run, 41 without a test"
    )
    expect(page.get_by_test_id("trace-row-W3")).to_contain_text("Failing")
    screenshot(page, "traceability-matrix")
