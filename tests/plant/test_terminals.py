"""Terminals report their version (issue 19 item 6, E9, seed 002 "the current version number …
on all terminals"): a site token issued on the environment page, reports over the API, a badge (SVG
and JSON) for a terminal's footer, and the environment page listing terminals not on the active version."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core import clock
from environments import terminals
from environments.models import ProductVersion, Terminal, TerminalToken
from tests.conftest import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.req("E9")]
REPORT = "/api/v1/terminals/report/"


def _api(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def token(site_a, cast) -> str:
    return terminals.issue_token(site_a, by=cast["admin"])


def test_an_admin_issues_a_terminal_token_shown_once_and_audited(cast, site_a):
    client = client_for(cast["admin"])
    page = client.post(f"/environments/{site_a.code}/PROD/terminal-token/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    raw = page.context["new_terminal_token"]
    assert raw.startswith("pcct_") and raw in page.content.decode()
    stored = TerminalToken.objects.get(site=site_a)
    assert stored.token_hash != raw and raw not in stored.token_hash
    assert AuditEvent.objects.filter(
        action="environments.terminal_token.issued", actor_id=cast["admin"].pk
    ).exists()
    # Shown once: the page afterwards names the token's date, not the token.
    assert raw not in client.get(f"/environments/{site_a.code}/PROD/").content.decode()
    # A replacement stops the old one at once.
    newer = client.post(f"/environments/{site_a.code}/PROD/terminal-token/").context["new_terminal_token"]
    assert terminals.site_for(raw) is None and terminals.site_for(newer) == site_a
    # Only who may configure the environment issues one.
    assert (
        client_for(cast["dev"]).post(f"/environments/{site_a.code}/PROD/terminal-token/").status_code == 403
    )


def test_a_terminal_reports_its_version_and_a_second_report_updates_it(token, site_a):
    first = _api(token).post(REPORT, {"name": "line2-hmi-01", "version": "0.9.0"}, format="json")
    assert first.status_code == 200, first.content
    assert first.json() == {
        "name": "line2-hmi-01",
        "product": "MES",  # the tier's only product
        "version": "0.9.0",
        "environment": f"{site_a.code} PROD",
        "expected": "1.0.0",
        "current": False,
    }
    with time_machine.travel(clock.now() + timedelta(minutes=5)):
        again = _api(token).post(
            REPORT, {"name": "line2-hmi-01", "version": "1.0.0", "tier": "prod"}, format="json"
        )
    assert again.json()["current"] is True
    row = Terminal.objects.get()
    assert (row.version, row.environment.tier, row.address) == ("1.0.0", "PROD", "127.0.0.1")
    assert row.reported_at > row.first_seen_at


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "1.0.0"}, "name"),
        ({"name": "hmi", "version": "v1"}, "version"),
        ({"name": "hmi\r\nX-Injected: 1", "version": "1.0.0"}, "name"),
        ({"name": "x" * 101, "version": "1.0.0"}, "name"),
        ({"name": "hmi", "version": "1.0.0", "tier": "QA"}, "tier"),
        ({"name": "hmi", "version": "1.0.0", "product": 7}, "product"),
    ],
)
def test_bad_reports_are_refused_field_by_field_and_change_nothing(token, body, field):
    response = _api(token).post(REPORT, body, format="json")
    assert response.status_code == 400 and field in response.json()["fields"], response.content
    assert not Terminal.objects.exists()


def test_a_report_needs_the_product_where_the_tier_runs_several(token, site_a):
    ProductVersion.objects.create(
        environment=site_a.environments.get(tier="PROD"), product="ERP", version="3.0.0"
    )
    refused = _api(token).post(REPORT, {"name": "hmi", "version": "3.0.0"}, format="json")
    assert refused.status_code == 400 and "product" in refused.json()["fields"]
    named = _api(token).post(REPORT, {"name": "hmi", "version": "3.0.0", "product": "ERP"}, format="json")
    assert named.json()["current"] is True


def test_no_token_a_wrong_token_or_a_nul_is_refused(token, site_a):
    none = _api().post(REPORT, {"name": "hmi", "version": "1.0.0"}, format="json")
    assert none.status_code == 401 and none["WWW-Authenticate"].startswith("Bearer")
    wrong = _api("pcct_not-a-token").post(REPORT, {"name": "hmi", "version": "1.0.0"}, format="json")
    assert wrong.status_code == 401
    # A person's API token is not a terminal token.
    user_token = _api().post(REPORT, {"name": "hmi"}, format="json", HTTP_AUTHORIZATION="Token abc")
    assert user_token.status_code == 401
    nul = _api(token).post(REPORT, {"name": "hm\x00i", "version": "1.0.0"}, format="json")
    assert nul.status_code == 400
    not_an_object = _api(token).post(REPORT, ["hmi"], format="json")
    assert not_an_object.status_code == 400
    assert not Terminal.objects.exists()


def test_the_badge_shows_the_active_version_as_json_and_svg(token, site_a):
    data = _api(token).get("/api/v1/terminals/badge.json").json()
    assert data == {
        "schemaVersion": 1,
        "label": f"{site_a.code} PROD MES",
        "message": "1.0.0",
        "color": "1b6e3a",
        "product": "MES",
        "version": "1.0.0",
    }
    svg = APIClient().get(f"/api/v1/terminals/badge.svg?token={token}&tier=UAT")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    body = svg.content.decode()
    assert body.startswith("<svg") and f"{site_a.code} UAT MES: 1.0.0" in body
    unknown = _api(token).get("/api/v1/terminals/badge.json?product=WMS").json()
    assert unknown["message"] == "unknown" and unknown["version"] == ""
    assert APIClient().get("/api/v1/terminals/badge.svg").status_code == 401
    assert _api(token).get("/api/v1/terminals/badge.json?tier=QA").status_code == 404


def test_the_environment_page_lists_terminals_left_behind_after_a_deployment(cast, token, site_a):
    for name in ("line1-hmi-01", "line2-hmi-01", "line2-label-station"):
        _api(token).post(REPORT, {"name": name, "version": "1.0.0"}, format="json")
    client = client_for(cast["releasemgr"])
    url = f"/environments/{site_a.code}/PROD/"
    before = client.get(url).content.decode()
    assert (
        "3 of 3 terminals run the active version." in before and 'data-testid="stale-terminal"' not in before
    )

    # PROD moves to 1.1.0 (a deployment records the new version); two terminals follow, one does not.
    ProductVersion.objects.filter(environment__site=site_a, environment__tier="PROD").update(version="1.1.0")
    for name in ("line1-hmi-01", "line2-hmi-01"):
        _api(token).post(REPORT, {"name": name, "version": "1.1.0"}, format="json")
    page = client.get(url)
    html = page.content.decode()
    assert "2 of 3 terminals run the active version." in html
    assert html.count('data-testid="stale-terminal"') == 1
    stale = page.context["terminals"]["stale"]
    assert [(row.terminal.name, row.terminal.version, row.expected) for row in stale] == [
        ("line2-label-station", "1.0.0", "1.1.0")
    ]
    # A terminal silent for a day is marked so.
    Terminal.objects.filter(name="line2-label-station").update(reported_at=clock.now() - timedelta(days=2))
    assert client.get(url).context["terminals"]["rows"][0].silent is True


def test_the_terminal_list_costs_the_same_queries_for_3_or_60_terminals(cast, token, site_a):
    client = client_for(cast["releasemgr"])
    url = f"/environments/{site_a.code}/PROD/"
    for n in range(3):
        _api(token).post(REPORT, {"name": f"t{n}", "version": "1.0.0"}, format="json")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(3, 60):
        _api(token).post(REPORT, {"name": f"t{n}", "version": "0.9.0"}, format="json")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_schema_documents_the_terminal_endpoints_without_warnings(client):
    schema = client.get("/api/schema/?format=json")
    paths = json.loads(schema.content)["paths"]
    assert {
        "/api/v1/terminals/report/",
        "/api/v1/terminals/badge.json",
        "/api/v1/terminals/badge.svg",
    } <= set(paths)
