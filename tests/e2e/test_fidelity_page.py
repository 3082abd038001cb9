"""The fidelity register in a browser (issue 19 item 1): Berlin's UAT page lists how it has each
dependency; the demo's Berlin downtime RFC touches WMS, which Berlin's UAT only simulates, so the
"Staging gaps accepted" gate fails until the plant director accepts the risk with the password (C5,
C2). Axe-clean, the Nu HTML checker clean, and reflowing on a 390 px phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from releases.models import Rfc, RiskAcceptance
from tests.e2e.conftest import demo_password, login, screenshot
from tests.e2e.judges import axe, missing_judges, vnu

pytestmark = pytest.mark.browser

TITLE = "Downtime-reason screen for Berlin line operators"


def judged(page, name: str) -> None:
    path = screenshot(page, name)
    if missing_judges() is None:
        assert axe(page) == []
        html = path.with_suffix(".html")
        html.write_text(page.content(), encoding="utf-8")
        assert vnu([html]) == {}


def test_the_plant_director_accepts_the_simulated_wms(page, portal):
    login(page, portal, "plantdirector", demo_password())
    page.goto(f"{portal}/environments/BER/UAT/")
    register = page.get_by_test_id("fidelity-register")
    expect(register.get_by_test_id("dependency")).to_have_count(6)
    expect(register.get_by_role("row", name="WMS")).to_contain_text("Simulator")
    judged(page, "fidelity-register")

    rfc = Rfc.objects.get(title=TITLE)
    page.goto(f"{portal}/rfcs/{rfc.uuid}/")
    touched = page.get_by_test_id("fidelity-BER")
    expect(touched.get_by_role("row", name="WMS")).to_contain_text(
        "UAT only has a simulator of WMS: a green UAT says little about it."
    )
    expect(touched.get_by_role("row", name="ERP")).to_contain_text("Test endpoint")
    gates = page.get_by_test_id("later-gates")
    expect(gates).to_contain_text("Not accepted: BER UAT has WMS as simulator")
    judged(page, "fidelity-rfc")

    page.get_by_text("Accept the risk…").click()
    form = page.get_by_test_id("accept-risk-form")
    form.get_by_label("Why may PROD take this change").fill(
        "WMS picks on line 1 are checked by hand for the first shift after go-live."
    )
    form.get_by_label("Your password (signs the acceptance)").fill(demo_password())
    screenshot(page, "fidelity-accept-form")
    form.get_by_role("button", name="Accept the risk for this artifact").click()

    expect(page.get_by_test_id("acceptance")).to_contain_text("Accepted by Piet Dekker")
    expect(gates).to_contain_text("Accepted: BER UAT has WMS as simulator")
    assert RiskAcceptance.objects.get(rfc=rfc).accepted_by.username == "plantdirector"
    judged(page, "fidelity-accepted")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "fidelity-accepted-phone")


def test_the_release_manager_records_a_dependency(page, portal):
    """The register's form: a release manager adds the Historian to Berlin's PROD; axe-clean, phone-wide."""
    login(page, portal, "releasemgr", demo_password())
    page.goto(f"{portal}/environments/BER/PROD/")
    form = page.get_by_test_id("dependency-form")
    form.get_by_label("Dependency").fill("Scale terminals")
    form.get_by_label("How this tier has it").select_option("real")
    form.get_by_label("Criticality").select_option("high")
    form.get_by_label("Note").fill("Checkweighers on line 2")
    form.get_by_role("button", name="Save the dependency").click()
    row = page.get_by_test_id("fidelity-register").get_by_role("row", name="Scale terminals")
    expect(row).to_contain_text("Checkweighers on line 2")
    judged(page, "fidelity-register-edit")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "fidelity-register-phone")
