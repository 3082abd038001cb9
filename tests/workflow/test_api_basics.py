"""The API contract's foundation: token auth, error shape, schema and docs without a CDN."""

import re

import pytest

from audit.models import AuditEvent
from tests.conftest import PASSWORD, api_client_for

pytestmark = pytest.mark.django_db


def test_token_for_username_and_password(client, cast):
    response = client.post(
        "/api/v1/auth/token/", {"username": "dev", "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    listed = client.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Token {token}")
    assert listed.status_code == 200
    assert {row["code"] for row in listed.json()["results"]} == {"PLA", "PLB"}
    assert AuditEvent.objects.filter(action="accounts.token.issued", actor_name="dev").exists()


def test_bad_credentials_are_400_with_the_error_shape(client, cast):
    response = client.post(
        "/api/v1/auth/token/", {"username": "dev", "password": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Unable to log in with the provided credentials.",
        "code": "invalid_credentials",
    }
    assert AuditEvent.objects.filter(action="accounts.token.refused").exists()


def test_unauthenticated_is_401_and_unknown_is_404(client, cast):
    response = client.get("/api/v1/environments/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    missing = api_client_for(cast["dev"]).get("/api/v1/environments/999999/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_invalid_input_is_400_naming_the_field_and_nothing_changes(cast, site_a):
    from environments.models import Environment

    prod = Environment.objects.get(site=site_a, tier="PROD")
    api = api_client_for(cast["admin"])
    response = api.patch(
        f"/api/v1/environments/{prod.pk}/", {"active_version": "two", "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "active_version" in response.json()["detail"]
    missing_reason = api.patch(f"/api/v1/environments/{prod.pk}/", {"sla": "x"}, format="json")
    assert missing_reason.status_code == 400 and "reason" in missing_reason.json()["fields"]
    prod.refresh_from_db()
    assert prod.active_version == "1.0.0" and prod.sla != "x"


def test_equipment_writes_refused_outside_prod(cast, site_a):
    from environments.models import Environment

    uat = Environment.objects.get(site=site_a, tier="UAT")
    response = api_client_for(cast["admin"]).patch(
        f"/api/v1/environments/{uat.pk}/", {"equipment_writes": True, "reason": "try"}, format="json"
    )
    assert response.status_code == 400 and "Only PROD may write to equipment" in response.json()["detail"]
    uat.refresh_from_db()
    assert uat.equipment_writes is False


def test_schema_and_docs_are_served_without_a_cdn(client, cast):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/sites/", "/api/v1/environments/", "/api/v1/audit/verify/", "/api/v1/auth/token/"):
        assert path in text
    client.force_login(cast["dev"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", docs.content.decode())
    assert external == []


def test_schema_validates_without_warnings(tmp_path):
    """The OpenAPI schema is what pipelines code against: it must validate, warning-free."""
    from django.core.management import call_command

    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in (
        "/api/v1/rfcs/{uuid}/submit/",
        "/api/v1/rfcs/{uuid}/gates/",
        "/api/v1/approvals/{id}/approve/",
    ):
        assert path in text, path
