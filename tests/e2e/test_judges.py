"""Every page passes the outside judges (issue 18 item 1): a browser walks the portal — every link an
admin can follow from the navigation (two of each kind of address), each role's own pages, forms in
their error state, the sign-in page, an unknown address, and an approver's pages on a phone — runs
axe-core on each (0 serious or critical violations) and saves its HTML for the Nu HTML checker
(0 errors). The pages and both reports are kept in test-artifacts/judges/."""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests.e2e.conftest import demo_password, login, logout
from tests.e2e.judges import axe, vnu

pytestmark = [pytest.mark.browser, pytest.mark.judges]
OUT = Path(__file__).resolve().parents[2] / "test-artifacts" / "judges"
# Not pages: downloads, feeds, the API and the Django admin's own screens (judged at its index only).
NOT_PAGES = re.compile(
    r"(\.(csv|pdf|ics|json|jsonl|xlsx|png|txt)$|/api/|/admin/.|/logout|/evidence/[0-9a-f-]{36}/|"
    r"/calendar/feed/|/dev/mailbox/.|/static/|/media/)"
)
PER_KIND = 2
LIMIT = 90


def kind(path: str) -> str:
    """Addresses that differ only by an id, a site code or a tier are one kind of page."""
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", path)
    path = re.sub(r"/[A-Z][A-Z0-9]{1,9}(?=/|$)", "/<code>", path)
    return re.sub(r"/\d+(/|$)", r"/<n>\1", path)


# An RFC's page differs by its state (draft, approved, scheduled, deployed …): every demo RFC is judged.
MORE = {"/rfcs/<uuid>/": 10}


class Walk:
    def __init__(self, page, portal: str, language: str = "en"):
        self.page, self.portal, self.language = page, portal, language
        self.out = OUT / language
        self.saved: list[Path] = []
        self.axe: dict[str, list] = {}
        self.statuses: dict[str, int] = {}
        self.other_language: dict[str, str] = {}
        self.out.mkdir(parents=True, exist_ok=True)

    def judge(self, name: str) -> None:
        """axe on the page as it is now, and its HTML saved for the Nu checker."""
        slug = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")[:80] or "home"
        file = self.out / f"{len(self.saved):03d}-{slug}.html"
        file.write_text(self.page.content(), encoding="utf-8")
        self.saved.append(file)
        lang = self.page.evaluate("() => document.documentElement.lang") or ""
        if not lang.lower().startswith(self.language) and "/admin/" not in self.page.url:
            self.other_language[self.page.url] = lang
        found = axe(self.page)
        if found:
            self.axe[f"{file.name} ({self.page.url})"] = found

    def visit(self, path: str, name: str | None = None) -> int:
        response = self.page.goto(self.portal + path)
        status = response.status if response else 0
        self.statuses[path] = status
        if status == 200 or status >= 400:
            self.judge(name or path)
        return status

    def links(self) -> list[str]:
        hrefs = self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        found = []
        for href in hrefs:
            if not href or not href.startswith("/") or href.startswith("//"):
                continue
            path = href.split("#")[0].split("?")[0]
            if path and not NOT_PAGES.search(path):
                found.append(path)
        return found

    def crawl(self, starts: list[str]) -> None:
        kinds: Counter = Counter()
        queue, seen = deque(starts), set()
        while queue and len(seen) < LIMIT:
            path = queue.popleft()
            if path in seen or kinds[kind(path)] >= MORE.get(kind(path), PER_KIND):
                continue
            seen.add(path)
            kinds[kind(path)] += 1
            if self.visit(path) == 200:
                queue.extend(p for p in self.links() if p not in seen)


# The walk in each language, chosen as a browser does (Accept-Language): the German walk also checks
# that every page it judges says it is German.
LANGUAGES = {"en": "en-GB,en;q=0.9", "de": "de-DE,de;q=0.9"}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_page_passes_axe_and_the_nu_html_checker(page, portal, language):
    page.set_extra_http_headers({"Accept-Language": LANGUAGES[language]})
    walk = Walk(page, portal, language)

    # Signed out: the sign-in page, refused, and an unknown address.
    walk.visit("/accounts/login/", "sign-in")
    page.locator("#id_username").fill("admin")
    page.locator("#id_password").fill("not the password")
    page.locator("form:has(#id_password) button[type=submit]").click()
    walk.judge("sign-in refused")

    login(page, portal, "admin", demo_password())
    walk.visit("/no/such/page/", "not found")
    from reports import periodic

    review = periodic.create(User.objects.get(username="auditor"), None, None)
    walk.crawl(
        [
            "/",
            "/rfcs/",
            "/dashboard/",
            "/environments/calendar/",
            "/environments/OPEN/PROD/flags/",
            "/audit/",
            f"/audit/periodic-reviews/{review.pk}/",
            "/approvals/standard/",
            "/approvals/absences/",
            "/dev/mailbox/",
            "/admin/",
        ]
    )
    # Forms in their error state.
    walk.visit("/rfcs/new/", "new rfc")
    page.locator("main form button[type=submit]").last.click()
    walk.judge("new rfc refused")
    walk.visit("/rfcs/?state=nonsense", "rfc list refused filter")
    walk.visit("/dashboard/?since=2026-13-01", "dashboard refused period")
    walk.visit("/environments/BER/UAT/", "environment")
    page.get_by_test_id("dependency-form").locator("button[type=submit]").click()
    walk.judge("dependency refused")
    logout(page)

    # An approver's queue and decision page, on a desktop and on a phone: the first approver the demo
    # has something waiting for.
    href = ""
    for approver in ("itmanager", "opsmanager", "cio", "plantdirector"):
        login(page, portal, approver, demo_password())
        walk.visit("/approvals/", f"approvals of {approver}")
        decide = page.locator("main table a.btn.primary[href^='/approvals/']")
        if decide.count():
            href = decide.first.get_attribute("href")
            walk.visit(href, "decide")
            page.set_viewport_size({"width": 390, "height": 844})
            walk.visit(href, "decide on a phone")
            walk.visit("/", "approver home on a phone")
            page.set_viewport_size({"width": 1280, "height": 900})
        logout(page)
        if href:
            break
    assert href, "the demo has an approval waiting"
    for user in ("dev", "tester", "releasemgr", "auditor"):
        login(page, portal, user, demo_password())
        walk.judge(f"home of {user}")
        logout(page)

    checked = vnu(walk.saved)
    report = {"pages": len(walk.saved), "axe": walk.axe, "vnu": checked, "statuses": walk.statuses}
    (walk.out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    assert len(walk.saved) >= 40, walk.statuses
    assert not [p for p, s in walk.statuses.items() if s >= 500], walk.statuses
    assert walk.axe == {}, json.dumps(walk.axe, indent=1)[:6000]
    assert checked == {}, json.dumps(checked, indent=1)[:6000]
    assert walk.other_language == {}, walk.other_language


def test_the_admin_wears_the_portal_header(page, portal):
    from tests.e2e.conftest import screenshot

    login(page, portal, "admin", demo_password())
    page.goto(f"{portal}/admin/")
    assert page.get_by_role("navigation", name="Portal").get_by_role("link", name="RFCs").is_visible()
    screenshot(page, "admin-with-portal-header")
