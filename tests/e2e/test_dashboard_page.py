"""The dashboard in a real browser (issue 17 item 1): a plant manager sees November 2026 at Berlin and
Chicago — the key figures, each chart drawn by the vendored Chart.js under the strict CSP with its
table, a figure that opens the RFCs behind it, and the phone viewport without sideways scrolling."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from environments.models import Site
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser
NOVEMBER = "since=2026-11-01&until=2026-11-30"


@pytest.fixture
def november(demo_data, monkeypatch):
    from django.contrib.auth.models import User

    from tests.reports import history

    monkeypatch.setattr(history, "VERSION_PREFIX", "2.90")
    people = {"dev": User.objects.get(username="dev")}
    return history.build(people, Site.objects.get(code="BER"), Site.objects.get(code="CHI"))


def test_a_manager_reads_how_change_went_and_opens_the_rfcs_behind_a_figure(page, portal, november):
    login(page, portal, "releasemgr", demo_password())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("How change is going")
    page.goto(f"{portal}/dashboard/?{NOVEMBER}")
    expect(page.get_by_test_id("figure-failure-rate")).to_contain_text("50%")  # 2 of 4 across sites
    for name in ("deployments", "adherence", "gates", "approvals", "sites"):
        chart = page.get_by_test_id(f"chart-{name}")
        expect(chart.locator("canvas")).to_be_visible()
        assert page.evaluate(
            "(name) => !!window.Chart.getChart(document.querySelector(`canvas[data-chart=${name}]`))", name
        ), name
    expect(page.get_by_test_id("chart-sites").locator("tbody tr")).to_have_count(
        1
    )  # BER; CHI ended in December UTC
    screenshot(page, "dashboard-all-sites")

    page.get_by_label("Site", exact=True).select_option("BER")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("BER")
    expect(page.get_by_test_id("figure-failure-rate")).to_contain_text("67%")
    expect(page.locator("main")).to_contain_text("Days in Europe/Berlin")
    screenshot(page, "dashboard-berlin")

    page.get_by_test_id("figure-rollback-rate").get_by_role("link").click()
    expect(page.get_by_test_id("figure-note")).to_contain_text("The RFCs that rolled back in PROD")
    expect(page.get_by_test_id("rfc-row")).to_have_count(1)
    expect(page.get_by_test_id("rfc-row")).to_contain_text(november["rolled"].number)
    screenshot(page, "dashboard-rfcs-behind-a-figure")


def test_the_dashboard_on_a_phone(page, portal, november):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, portal, "plantdirector", demo_password())
    page.goto(f"{portal}/dashboard/?site=BER&{NOVEMBER}")
    expect(page.get_by_test_id("figure-adherence")).to_contain_text("50%")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "dashboard-phone")


def test_the_auditor_home_answers_the_first_questions(page, portal, november):
    from audit import tasks as audit_tasks

    audit_tasks.verify_chain()
    page.goto(f"{portal}/accounts/login/")
    page.get_by_label("Username").fill("auditor")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    login(page, portal, "auditor", demo_password())
    expect(page.get_by_test_id("chain-state")).to_have_text("Intact")
    expect(page.get_by_test_id("home-failed-logins")).to_contain_text("auditor")
    expect(page.get_by_test_id("home-emergencies")).to_contain_text("Emergency changes")
    expect(page.get_by_test_id("home-admins")).to_contain_text("Alex Admin")
    screenshot(page, "home-auditor")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "home-auditor-phone")


def test_a_plant_director_home_shows_the_figures_of_their_sites(page, portal, november):
    login(page, portal, "plantdirector", demo_password())
    summary = page.get_by_test_id("home-summary")
    expect(summary).to_contain_text("How change is going at")
    expect(summary.get_by_test_id("figure-failure-rate")).to_be_visible()
    summary.get_by_role("link", name="Open the dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("How change is going")
    page.go_back()
    screenshot(page, "home-plant-director")
