"""The Content-Security-Policy holds on every main page: each answers with the strict policy, the
browser reports no violation (no inline script or style anywhere, nothing from another origin), the
page is still styled, htmx still swaps, and the API docs (Swagger UI) still render their operations."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from deployments.models import Deployment, DeploymentState
from releases.models import Rfc
from tests.e2e.conftest import demo_password, login, screenshot

pytestmark = pytest.mark.browser

# Set before any page script runs (Playwright's init scripts are not subject to the page's CSP).
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""

EXPECTED_DIRECTIVES = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}


class Watch:
    """Console errors and CSP violation events of one page, across navigations."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.headers: dict[str, str] = {}
        page.add_init_script(COLLECT_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.console.append(f"{msg.text} ({msg.location.get('url')})")

    def visit(self, url: str) -> dict:
        response = self.page.goto(url)
        assert response is not None and response.status == 200, (url, response and response.status)
        self.page.wait_for_load_state("networkidle")
        return response.headers

    def problems(self) -> list[str]:
        events = self.page.evaluate("() => window.__csp || []")
        return [*events, *self.console]


def policy_of(headers: dict) -> set[str]:
    return {part.strip() for part in headers["content-security-policy"].split(";")}


def expect_styled(page) -> None:
    """portal.css applied (an external sheet, allowed) and htmx loaded (an external script)."""
    expect(page.locator("header.topbar")).to_have_css("display", "flex")
    assert page.evaluate("() => typeof window.htmx === 'object'")


def test_main_pages_have_the_strict_policy_and_no_violation(page, portal):
    rfc = Rfc.objects.order_by("pk").first()
    deployment = Deployment.objects.select_related("rfc").order_by("pk").first()
    assert deployment is not None, "the demo has a finished deployment"
    watch = Watch(page)

    login_headers = watch.visit(f"{portal}/accounts/login/")
    assert policy_of(login_headers) >= EXPECTED_DIRECTIVES
    assert "unsafe-inline" not in login_headers["content-security-policy"]
    login(page, portal, "admin", demo_password())

    pages = {
        "home": "/",
        "rfc-list": "/rfcs/",
        "rfc-detail": f"/rfcs/{rfc.uuid}/",
        "rfc-new": "/rfcs/new/",
        "calendar": "/environments/calendar/",
        "dashboard": "/dashboard/",
        "environments": "/environments/",
        "audit": "/audit/",
        "deployment": f"/rfcs/{deployment.rfc.uuid}/deployments/{deployment.uuid}/",
        "admin": "/admin/",
        "admin-users": "/admin/auth/user/",
        "admin-user": f"/admin/auth/user/{deployment.scheduled_by_id}/change/",
        "password": "/accounts/password/",
        "api-root": "/api/v1/",
    }
    seen = {}
    for name, path in pages.items():
        headers = watch.visit(portal + path)
        assert policy_of(headers) >= EXPECTED_DIRECTIVES, path
        if not path.startswith(("/admin/", "/api/")):
            expect_styled(page)
        seen[name] = watch.problems()
    screenshot(page, "csp-admin-user")

    # An approver's queue (it polls through htmx).
    page.context.clear_cookies()
    login(page, portal, "itmanager", demo_password())
    watch.visit(f"{portal}/approvals/")
    expect_styled(page)
    seen["approvals"] = watch.problems()

    assert watch.problems() == [], seen


def test_htmx_still_swaps_on_the_live_deployment_page(page, portal):
    """A deployment that is not finished refreshes its live panel through htmx every 2 s; the state
    the worker writes shows up without a reload, and the panel stops polling once it is finished."""
    deployment = Deployment.objects.select_related("rfc").order_by("pk").first()
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.SCHEDULED, finished_at=None)
    watch = Watch(page)
    login(page, portal, "releasemgr", demo_password())
    watch.visit(f"{portal}/rfcs/{deployment.rfc.uuid}/deployments/{deployment.uuid}/")
    state = page.get_by_test_id("deployment-state")
    expect(state).to_have_text("Scheduled")
    page.evaluate("() => { document.getElementById('live').dataset.before = 'yes'; }")

    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.SUCCEEDED)
    expect(state).to_have_text("Succeeded", timeout=15_000)  # swapped in by htmx, no reload
    assert page.evaluate("() => document.getElementById('live').dataset.before === undefined")
    assert page.evaluate("() => !document.getElementById('live').hasAttribute('data-hx-get')")
    assert page.evaluate("() => document.querySelector('style') === null")  # no htmx indicator style
    assert watch.problems() == []


def test_api_docs_render_under_the_policy(page, portal):
    watch = Watch(page)
    login(page, portal, "dev", demo_password())
    headers = watch.visit(f"{portal}/api/docs/")
    assert policy_of(headers) >= EXPECTED_DIRECTIVES
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Plant Change Control API")
    # The portal's header and footer around it.
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="RFCs")).to_be_visible()
    expect(page.get_by_test_id("portal-version")).to_contain_text("v")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 20
    operations.filter(has_text="/api/v1/sites/").first.locator(".opblock-summary").click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    screenshot(page, "csp-api-docs")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(
        path=str(screenshot(page, "csp-api-docs").with_name("csp-api-docs-top.png")), full_page=False
    )
    assert watch.problems() == []
