"""Journey: an auditor opens the access review from the navigation, sees every demo account with its
roles (a time-bound admin grant with its expiry) and exports the list; a phone shows it too."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from core import clock
from core.roles import Role
from environments.models import Site, TimedRoleGrant
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser


def test_auditor_reviews_every_account_and_exports_it(page, portal):
    site = Site.objects.order_by("code").first()
    TimedRoleGrant.objects.create(
        user=User.objects.get(username="releasemgr"),
        role=Role.ADMIN,
        site=site,
        expires_at=clock.now() + timedelta(hours=8),
        granted_at=clock.now(),
    )
    login(page, portal, "auditor", demo_password())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access review").click()
    expect(page.get_by_role("heading", name="Access review")).to_be_visible()
    rows = page.get_by_test_id("review-row")
    expect(rows.first).to_be_visible()
    assert rows.count() == User.objects.count()
    releasemgr = page.locator('[data-username="releasemgr"]')
    expect(releasemgr).to_contain_text("Release manager")
    expect(releasemgr.get_by_test_id("review-expiry")).to_contain_text("until ")
    expect(releasemgr).to_contain_text(f"Admin · {site.code}")
    expect(page.locator('[data-username="auditor"]').get_by_test_id("review-last-login")).not_to_contain_text(
        "Never"
    )
    screenshot(page, "access-review")

    with page.expect_download() as download_info:
        page.get_by_test_id("review-csv").click()
    download = download_info.value
    assert download.suggested_filename.startswith("access-review-")
    table = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert {row["username"] for row in table} == set(User.objects.values_list("username", flat=True))

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_role("heading", name="Access review")).to_be_visible()
    screenshot(page, "access-review-phone")


def test_admin_grants_admin_for_a_limited_time_from_the_review(page, portal):
    login(page, portal, "admin", demo_password())
    page.goto(f"{portal}/accounts/review/")
    page.get_by_role("link", name="Grant a role for a limited time").click()
    expect(page.get_by_role("heading", name="Add time-bound role grant")).to_be_visible()
    page.get_by_label("Role").select_option("admin")
    screenshot(page, "access-review-grant-form")
