"""The paged approval queue (issue 20 item 4) before the outside judges: axe-core (0 serious or
critical violations) and the Nu HTML checker (0 errors) on its first and second page, with
screenshots at desktop and phone width in test-artifacts/screenshots/."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from environments.models import Site
from releases.models import Release
from tests.changecontrol.test_query_counts import _bulk_rfcs
from tests.e2e.conftest import demo_password, login, screenshot
from tests.e2e.judges import axe, missing_judges, vnu
from tests.e2e.test_judges import OUT

pytestmark = [pytest.mark.browser, pytest.mark.judges]


def test_the_paged_queue_passes_the_judges_on_a_desktop_and_a_phone(page, portal):
    if missing_judges():
        pytest.skip(missing_judges())
    _bulk_rfcs(
        90,
        authors=[User.objects.get(username="dev")],
        release=Release.objects.filter(product="MES").first(),
        site_a=Site.objects.get(code="BER"),
        site_b=Site.objects.get(code="CHI"),
    )
    login(page, portal, "itmanager", demo_password())
    out = OUT / "queue"
    out.mkdir(parents=True, exist_ok=True)
    saved, found = [], {}
    for width, height, label in ((1280, 900, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        for number in (1, 2):
            page.goto(f"{portal}/approvals/?page={number}")
            nav = page.get_by_test_id("queue-pager")
            assert nav.get_attribute("aria-label")
            assert nav.locator("[aria-current=page]").inner_text().strip().endswith(str(number))
            rows = page.get_by_test_id("queue-row").count()
            assert rows == 25 if number == 1 else 1 <= rows <= 25
            file = out / f"queue-page-{number}-{label}.html"
            file.write_text(page.content(), encoding="utf-8")
            saved.append(file)
            found.update({f"{file.name}": v for v in [axe(page)] if v})
            screenshot(page, f"approval-queue-page-{number}-{label}")
    # Following the pager's link keeps to the queue.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{portal}/approvals/")
    page.get_by_test_id("queue-pager").locator("a[rel=next]").click()
    page.wait_for_url("**/approvals/?page=2")
    assert found == {}, found
    assert vnu(saved) == {}
