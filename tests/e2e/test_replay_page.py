"""The RFC page in a browser: a release whose migration changes how ERP production orders are
confirmed, its recorded messages replayed on copies of Berlin's UAT, the differing, missing and
duplicated messages named; the parallel run equal; axe-clean on a desktop and a phone (issue 19 item 4)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.conftest import demo_password, login, screenshot
from tests.e2e.judges import axe, missing_judges, vnu

pytestmark = pytest.mark.browser

# On the demo plant's confirmations: PO-4712 one part more, PO-4713 dropped, PO-4714 confirmed twice.
MIGRATION = (
    "CREATE TRIGGER IF NOT EXISTS round_up AFTER INSERT ON erp_confirmations WHEN NEW.order_no = 'PO-4712' "
    "BEGIN UPDATE erp_confirmations SET qty = qty + 1 WHERE id = NEW.id; END;"
    "CREATE TRIGGER IF NOT EXISTS drop_scrap AFTER INSERT ON erp_confirmations WHEN NEW.order_no = 'PO-4713' "
    "BEGIN DELETE FROM erp_confirmations WHERE id = NEW.id; END;"
    "CREATE TRIGGER IF NOT EXISTS echo AFTER INSERT ON erp_confirmations WHEN NEW.order_no = 'PO-4714' "
    "BEGIN INSERT INTO erp_confirmations (message_key, order_no, line, qty) "
    "VALUES (NEW.message_key, NEW.order_no, NEW.line, NEW.qty); END;"
)


def test_the_reconciliation_names_the_messages_that_changed(page, portal, tmp_path):
    from django.contrib.auth import get_user_model

    from deployments import checks
    from deployments.models import CheckKind
    from environments.models import Site
    from tests import factories

    dev, berlin = get_user_model().objects.get(username="dev"), Site.objects.get(code="BER")
    rfc = factories.rfc(
        dev, berlin, release=factories.release(dev, "2.6.0", migration_sql=MIGRATION), title="Confirm scrap"
    )
    for kind in (CheckKind.REPLAY, CheckKind.PARALLEL):
        checks.run_check(checks.request_check(dev, rfc, kind, berlin).pk)

    login(page, portal, "dev", demo_password())
    page.goto(portal + reverse("releases:detail", args=[rfc.uuid]))
    report = page.get_by_test_id("replay-report")
    expect(report).to_contain_text("4 recorded message(s) replayed")
    expect(report.locator("dd")).to_have_text(["1", "1", "1", "1"])
    rows = report.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("ORD-4712")
    expect(rows.nth(0)).to_contain_text("differing")
    expect(rows.nth(1)).to_contain_text("ORD-4713")
    expect(rows.nth(2)).to_contain_text("duplicated")
    expect(page.get_by_test_id("parallel-report")).to_contain_text("Daily output by line: equal")
    report.scroll_into_view_if_needed()
    screenshot(page, "rfc-replay-reconciliation")
    if missing_judges() is None:
        assert axe(page) == []
        saved = tmp_path / "rfc-replay.html"
        saved.write_text(page.content(), encoding="utf-8")
        assert vnu([saved]) == {}
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "rfc-replay-reconciliation-phone")
