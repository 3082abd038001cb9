"""Under /api/ every 404 and 405 is JSON with the standard error body, whatever answered it (the URL
resolver, a DRF view, the schema and docs views); pages keep their HTML error pages. Every response
carries the Content-Security-Policy."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import api_client_for, client_for

pytestmark = pytest.mark.django_db

NOT_FOUND = [
    "/api/",
    "/api/nope",
    "/api/v1/nope/",
    "/api/v1/sites/NOPE/",
    "/api/v1/sites/PLA/nope/",
    "/api/v1/rfcs/not-a-uuid/",
    "/api/v1/rfcs/00000000-0000-0000-0000-000000000000/",
    "/api/v1/environments/999999/",
    "/api/v1/environments/999999/drift/",
    "/api/v1/windows/nope/",
    "/api/v1/deployments/?page=999",
    "/api/schema/nope/",
    "/api/docs/nope/",
]
NOT_ALLOWED = [
    ("post", "/api/v1/sites/"),
    ("put", "/api/v1/sites/PLA/"),
    ("delete", "/api/v1/sites/PLA/"),
    ("patch", "/api/v1/audit/1/"),
    ("put", "/api/v1/rfcs/"),
    ("delete", "/api/v1/rfcs/00000000-0000-0000-0000-000000000000/"),
    ("get", "/api/v1/auth/token/"),
    ("delete", "/api/v1/auth/token/"),
    ("post", "/api/v1/windows/check/"),
    ("post", "/api/v1/windows/next/"),
    ("post", "/api/schema/"),
    ("post", "/api/docs/"),
    ("delete", "/api/docs/"),
]


def assert_error_body(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:200]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert "<" not in response.content.decode()


@pytest.fixture(params=["token", "session"])
def api(request, cast):
    admin = cast["admin"]
    return api_client_for(admin) if request.param == "token" else client_for(admin)


@pytest.mark.parametrize("url", NOT_FOUND)
def test_unknown_api_paths_are_json_404s(api, url):
    assert_error_body(api.get(url), 404, "not_found")


@pytest.mark.parametrize("url", ["/api/", "/api/v1/nope/", "/api/nope"])
def test_unknown_api_paths_are_json_404s_for_anonymous_clients_too(db, url):
    assert_error_body(APIClient().get(url), 404, "not_found")


@pytest.mark.parametrize(("method", "url"), NOT_ALLOWED)
def test_wrong_methods_are_json_405s_naming_the_method(api, method, url):
    response = getattr(api, method)(url)
    assert_error_body(response, 405, "method_not_allowed")
    assert method.upper() in response.json()["detail"]
    assert response["Allow"]


@pytest.mark.parametrize("url", ["/nope/", "/rfcs/not-a-uuid/", "/environments/NOPE/DEV/", "/apinope/"])
def test_pages_keep_their_html_404_page(cast, url):
    response = client_for(cast["admin"]).get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "<h1" in response.content.decode()


def test_a_page_that_refuses_a_method_is_not_turned_into_json(cast):
    response = client_for(cast["admin"]).delete("/healthz")
    assert response.status_code == 405
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("url", ["/accounts/login/", "/api/v1/nope/", "/healthz", "/api/schema/"])
def test_every_response_carries_the_strict_policy(db, url):
    policy = Client().get(url)["Content-Security-Policy"]
    directives = {part.strip() for part in policy.split(";")}
    assert {
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    } <= directives
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
