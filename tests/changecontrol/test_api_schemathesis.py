"""Schemathesis against the live test server: the OpenAPI schema read over HTTP from /api/schema/,
every operation called with generated requests (valid and invalid ones) as a privileged caller (the
admin) and an unprivileged one (a developer, and a user with no role), and every response checked:
no server error, a documented status code, a documented content type, a body matching the schema.

Bounded and deterministic: a fixed number of examples per operation, derandomized generation, no
example database, so a run is the same run every time (about a minute per caller on two cores).
"""

from __future__ import annotations

import io

import pytest
import requests
import schemathesis
from django.contrib.auth.models import User
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def portal(live_server, transactional_db) -> str:
    """The demo data (sites, RFCs, approvals, deployments, releases, evidence) behind a live server."""
    call_command("demo", stdout=io.StringIO())
    User.objects.create_user("norole", password="norole-password-1")  # signed in, no role anywhere
    return live_server.url.rstrip("/")


def token_for(base: str, username: str, password: str) -> str:
    response = requests.post(
        f"{base}/api/v1/auth/token/", json={"username": username, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def load_schema(base: str):
    schema = schemathesis.openapi.from_url(f"{base}/api/schema/", timeout=60)
    schema.config.update(base_url=base)
    # NUL bytes are generated too: the input guard answers them with a 400 (a 500 on PostgreSQL before).
    schema.config.generation.update(allow_x00=True)
    return schema


def real_path_parameters(path: str) -> list[dict]:
    """Path parameters naming real demo objects (a few of each kind, in a fixed order), so the
    generated requests reach real objects and not only 404s."""
    from approvals.models import Approval
    from audit.models import AuditEvent
    from deployments.models import Deployment
    from environments.models import Environment, Site
    from releases.models import GateWaiver, Release, Rfc

    few = 4
    if "{waiver_id}" in path:
        waivers = GateWaiver.objects.select_related("rfc").order_by("pk")[:few]
        return [{"uuid": str(w.rfc.uuid), "waiver_id": w.pk} for w in waivers]
    kinds = {
        "/api/v1/sites/{code}": lambda: [
            {"code": c} for c in Site.objects.order_by("code").values_list("code", flat=True)
        ],
        "/api/v1/environments/{id}": lambda: [
            {"id": pk} for pk in Environment.objects.order_by("pk").values_list("pk", flat=True)
        ],
        "/api/v1/rfcs/{uuid}": lambda: [
            {"uuid": str(u)} for u in Rfc.objects.order_by("pk").values_list("uuid", flat=True)
        ],
        "/api/v1/releases/{uuid}": lambda: [
            {"uuid": str(u)} for u in Release.objects.order_by("pk").values_list("uuid", flat=True)
        ],
        "/api/v1/deployments/{uuid}": lambda: [
            {"uuid": str(u)} for u in Deployment.objects.order_by("pk").values_list("uuid", flat=True)
        ],
        "/api/v1/approvals/{id}": lambda: [
            {"id": pk} for pk in Approval.objects.order_by("pk").values_list("pk", flat=True)
        ],
        "/api/v1/audit/{seq}": lambda: [
            {"seq": seq} for seq in AuditEvent.objects.order_by("seq").values_list("seq", flat=True)
        ],
    }
    for prefix, values in kinds.items():
        if path.startswith(prefix):
            rows = values()
            step = max(1, len(rows) // few)  # spread over the demo's objects (states differ)
            return rows[::step][:few]
    return []


def run_operation(operation, base: str, token: str) -> list[str]:
    """Up to EXAMPLES_PER_OPERATION requests, valid and invalid, on real objects and on generated
    path parameters; returns the first failing check."""
    failures: list[str] = []
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [
        operation.as_strategy(generation_mode=mode, path_parameters=parameters)
        for parameters in real_path_parameters(operation.path)
        for mode in modes
    ]
    strategies += [operation.as_strategy(generation_mode=mode) for mode in modes]
    strategy = st.one_of(strategies)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported as found
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case):
        if failures:
            return
        headers = {"Authorization": f"Token {token}"}
        response = case.call(base_url=base, headers=headers, timeout=60)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, ExceptionGroup) as error:  # a check's failure, or schemathesis' FailureGroup
            failures.append(f"{operation.label}: {error}\n  reproduce: {case.as_curl_command(headers)}")

    exercise()
    return failures


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", None), ("dev", None), ("norole", "norole-password-1")],
    ids=["admin", "developer", "no-role"],
)
def test_every_operation_answers_as_its_schema_says(portal, username, password):
    from tests.e2e.conftest import demo_password

    token = token_for(portal, username, password or demo_password())
    schema = load_schema(portal)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, "the schema lists the API's operations"
    # The token endpoint is exercised by token_for; fuzzing it would only trip its throttle.
    failures = [
        failure
        for operation in operations
        if operation.path != "/api/v1/auth/token/"
        for failure in run_operation(operation, portal, token)
    ]
    assert failures == [], "\n\n".join(failures)


def test_the_schema_documents_the_errors_and_the_token_endpoint(portal):
    schema = requests.get(f"{portal}/api/schema/?format=json", timeout=30).json()
    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert set(token["responses"]) >= {"200", "400", "429"}
    assert token["summary"] and "requestBody" in token and "security" not in token
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    transition = schema["paths"]["/api/v1/rfcs/{uuid}/transition/"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "422"} <= set(transition)
    sites = schema["paths"]["/api/v1/sites/"]["get"]["responses"]
    assert {"200", "401", "403", "404"} <= set(sites)  # 404: a page past the last
    release = schema["components"]["schemas"]["Release"]["properties"]["artifact_url"]
    assert release.get("nullable") is True and "default" not in release
