"""Readable at 200% zoom (issue 18 item 2): on a 1366-pixel screen zoomed to 200% (a 683-pixel wide
viewport), the RFC list and every demo RFC's page fit the width — wide tables scroll inside their own
box, the page itself never scrolls sideways."""

from __future__ import annotations

import pytest

from releases.models import Rfc
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser
WIDE = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def test_the_rfc_list_and_pages_fit_at_200_percent(page, portal):
    page.set_viewport_size({"width": 683, "height": 768})
    login(page, portal, "releasemgr", demo_password())
    for path in [
        "/rfcs/",
        "/dashboard/",
        "/environments/calendar/",
        "/",
        *[f"/rfcs/{r.uuid}/" for r in Rfc.objects.all()],
    ]:
        page.goto(portal + path)
        width, viewport = page.evaluate(WIDE)
        culprits = page.evaluate(
            """(max) => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > max + 1
                 && !e.closest('.table-scroll, pre, .chart')).slice(0, 5).map(e => e.tagName + '.' + e.className)""",
            viewport,
        )
        assert width <= viewport, f"{path} is {width} px wide on a {viewport} px viewport: {culprits}"
    page.goto(f"{portal}/rfcs/")
    screenshot(page, "zoom-200-rfc-list")
    page.goto(f"{portal}/rfcs/{Rfc.objects.order_by('pk').first().uuid}/")
    screenshot(page, "zoom-200-rfc-page")
