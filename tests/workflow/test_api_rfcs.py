"""The releases and RFCs API: every route answers the right status for the right
user, a complete RFC is filed and submitted end to end, and bad input never becomes a 500."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from core.roles import Role
from plant import uploads
from releases.models import Evidence, Release, Rfc, UatSignoff
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, api_client_for, make_user

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored(kind: str = "evidence") -> list[str]:
    return sorted(os.listdir(uploads.storage_dir(kind)))


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert isinstance(body.get("code"), str) and body["code"]
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture
def dev(cast):
    return api_client_for(cast["dev"])


@pytest.fixture
def tester(cast):
    return api_client_for(cast["tester"])


@pytest.fixture
def draft(cast, site_a):
    """A draft whose release succeeded in PLA's DEV and UAT, ready to be signed off."""
    item = factories.rfc(cast["dev"], site_a)
    factories.promote(item, site_a)
    return item


@pytest.fixture
def ready(cast, site_a):
    return factories.ready_rfc(cast["dev"], cast["tester"], site_a)


def rfc_payload(release: Release, **extra) -> dict:
    payload = {
        "title": "Raise label printer timeout",
        "description": "Printers on line 2 time out under load.",
        "release": str(release.uuid),
        "rollback_plan": "Redeploy 1.0.0 and run undo.sql",
        "impacts": [{"site": "PLA", "lines": ["Line 2"], "modules": ["Labelling"], "notes": "Night shift"}],
    }
    payload.update(extra)
    return payload


# --- The journey ----------------------------------------------------------------------------------
def test_a_complete_rfc_filed_and_submitted_through_the_api(client, cast, site_a):
    token = client.post(
        f"{API}/auth/token/", {"username": "dev", "password": PASSWORD}, content_type="application/json"
    ).json()["token"]
    from rest_framework.test import APIClient

    dev = APIClient()
    dev.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    artifact = b"PK\x03\x04 MES 1.1.0 build 77" + os.urandom(64)
    created = dev.post(
        f"{API}/releases/",
        {
            "product": "MES",
            "version": "1.1.0",
            "notes": "Label timeout configurable",
            "artifact": SimpleUploadedFile("mes-1.1.0.zip", artifact),
            "migration_sql": "ALTER TABLE label ADD timeout int;",
            "undo_sql": "ALTER TABLE label DROP timeout;",
        },
        format="multipart",
    )
    assert created.status_code == 201, created.content
    release = created.json()
    assert release["artifact_sha256"] == hashlib.sha256(artifact).hexdigest()
    assert release["artifact_size"] == len(artifact) and release["artifact_name"] == "mes-1.1.0.zip"
    assert release["created_by"] == "dev" and len(stored("artifacts")) == 1
    assert dev.get(f"{API}/releases/{release['uuid']}/").json()["version"] == "1.1.0"

    response = dev.post(
        f"{API}/rfcs/",
        {
            "title": "Configurable label timeout",
            "description": "Printers on line 2 time out under load.",
            "release": release["uuid"],
            "rollback_plan": "Redeploy 1.0.0 and run the undo script.",
            "impacts": [{"site": "PLA", "lines": ["Line 2"], "modules": ["Labelling"]}],
            "requested_timing": "Next maintenance window",
            "risk_answers": {"gxp": 0, "safety": 0, "production": 1, "rollback": 1, "novelty": 0},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    rfc = response.json()
    assert rfc["state"] == "draft" and rfc["change_class"] == "minor" and rfc["author"] == "dev"
    assert rfc["risk_level"] == "low" and rfc["risk_score"] == 11 and rfc["risk_answers"]["sites"] == 0
    assert re.fullmatch(r"RFC-\d{4}-\d{4}", rfc["number"])
    assert rfc["release"] == {
        "uuid": release["uuid"],
        "product": "MES",
        "version": "1.1.0",
        "name": "MES 1.1.0",
    }
    assert rfc["impacts"] == [
        {"site": "PLA", "lines": ["Line 2"], "modules": ["Labelling"], "interfaces": [], "notes": ""}
    ]
    assert {a["name"] for a in rfc["actions"]} == {"submit", "cancel"}
    url = f"{API}/rfcs/{rfc['uuid']}/"

    gates = dev.get(f"{url}gates/").json()
    assert {g["name"] for g in gates if not g["passed"]} == {"UAT sign-off"}
    # The contract's three fields, plus the additive waiver fields.
    assert all(set(g) == {"name", "passed", "reason", "waived", "waived_by", "waived_at"} for g in gates)
    assert not any(g["waived"] for g in gates)

    report = b"2026-11-20 10:01 PASS label printed after 4 s\n"
    evidence = dev.post(
        f"{url}evidence/",
        {"file": SimpleUploadedFile("uat-run.log", report), "kind": "test_report", "description": "UAT run"},
        format="multipart",
    )
    assert evidence.status_code == 201, evidence.content
    row = evidence.json()
    assert row["sha256"] == hashlib.sha256(report).hexdigest()
    assert row["size"] == len(report) and row["content_type"] == "text/plain" and row["uploaded_by"] == "dev"

    factories.promote(Rfc.objects.get(uuid=rfc["uuid"]), site_a)  # X5: proven in DEV and UAT first
    signoff = api_client_for(cast["tester"]).post(
        f"{url}signoff/",
        {
            "site": "PLA",
            "comment": "Printed 50 labels on UAT line 2.",
            "files": [factories.png("line2.png"), factories.log("printer.log")],
        },
        format="multipart",
    )
    assert signoff.status_code == 201, signoff.content
    assert signoff.json()["site"] == "PLA" and len(signoff.json()["evidence"]) == 2
    assert signoff.json()["release"] == release["uuid"]
    assert all(g["passed"] for g in dev.get(f"{url}gates/").json())

    listed = dev.get(f"{url}evidence/").json()
    assert len(listed) == 3 and {e["kind"] for e in listed} == {"test_report", "signoff"}

    submitted = dev.post(f"{url}submit/")
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["state"] == "submitted"
    assert Rfc.objects.get(uuid=rfc["uuid"]).state == RfcState.SUBMITTED
    event = AuditEvent.objects.get(action="releases.rfc.submitted")
    assert event.object_id == rfc["number"] and event.actor_name == "dev"

    # Content is frozen after submission: 409, nothing changes.
    edit = dev.patch(url, {"title": "Sneaky"}, format="json")
    assert_error(edit, 409, "state_conflict")
    late = dev.post(f"{url}evidence/", {"file": factories.log(), "kind": "log"}, format="multipart")
    assert_error(late, 409)
    assert dev.get(url).json()["title"] == "Configurable label timeout"
    assert dev.post(f"{url}submit/").status_code == 409
    # The readable number works in the URL too.
    assert dev.get(f"{API}/rfcs/{rfc['number']}/").json()["uuid"] == rfc["uuid"]


def test_incomplete_rfc_submit_is_422_naming_the_gate(dev, draft):
    response = dev.post(f"{API}/rfcs/{draft.uuid}/submit/")
    body = assert_error(response, 422, "rule")
    assert body["rule"] == "UAT sign-off" and "UAT sign-off" in body["detail"]
    assert [g["name"] for g in body["failed"]] == ["UAT sign-off"]
    assert body["failed"][0]["passed"] is False and body["failed"][0]["reason"]
    assert Rfc.objects.get(pk=draft.pk).state == RfcState.DRAFT
    assert not AuditEvent.objects.filter(action="releases.rfc.submitted").exists()


def test_major_rfc_without_downtime_is_refused_with_the_fields(cast, dev, site_a):
    release = factories.release(cast["dev"], "2.0.0")
    response = dev.post(f"{API}/rfcs/", rfc_payload(release), format="json")
    body = assert_error(response, 400, "invalid")
    assert set(body["fields"]) == {"estimated_downtime_minutes", "retraining_note"}
    ok = dev.post(
        f"{API}/rfcs/",
        rfc_payload(release, estimated_downtime_minutes=30, retraining_note="Operators see the new screen."),
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["change_class"] == "major"


# --- Who sees and does what ---------------------------------------------------------------------
ROUTES = [
    ("get", ""),
    ("get", "gates/"),
    ("get", "evidence/"),
    ("post", "evidence/"),
    ("post", "submit/"),
    ("post", "signoff/"),
    ("post", "transition/"),
    ("patch", ""),
    ("put", ""),
]


def test_unauthenticated_is_401_everywhere(client, draft):
    for path in (f"{API}/releases/", f"{API}/releases/{draft.release.uuid}/", f"{API}/rfcs/"):
        assert_error(client.get(path), 401, "not_authenticated")
    for method, suffix in ROUTES:
        response = getattr(client, method)(f"{API}/rfcs/{draft.uuid}/{suffix}")
        assert_error(response, 401, "not_authenticated")
    assert_error(client.post(f"{API}/rfcs/", {}, content_type="application/json"), 401)
    bad_token = client.get(f"{API}/rfcs/", HTTP_AUTHORIZATION="Token nope")
    assert_error(bad_token, 401)


def test_another_sites_rfc_is_404_on_every_route(cast, draft, site_a, site_b):
    outsider = api_client_for(make_user("dev_b", Role.DEVELOPER, Role.KEY_USER, site=site_b))
    for method, suffix in ROUTES:
        response = getattr(outsider, method)(f"{API}/rfcs/{draft.uuid}/{suffix}", {}, format="json")
        assert_error(response, 404, "not_found")
    assert_error(outsider.get(f"{API}/rfcs/{draft.number}/"), 404)
    assert outsider.get(f"{API}/rfcs/").json()["count"] == 0
    insider = api_client_for(cast["itmanager_a"])
    assert insider.get(f"{API}/rfcs/{draft.uuid}/").status_code == 200
    assert [row["number"] for row in insider.get(f"{API}/rfcs/").json()["results"]] == [draft.number]
    nobody = api_client_for(cast["nobody"])
    assert nobody.get(f"{API}/rfcs/").json()["count"] == 0
    assert nobody.get(f"{API}/releases/").json()["count"] == 0
    assert_error(nobody.get(f"{API}/rfcs/{draft.uuid}/"), 404)


def test_only_the_author_edits_a_draft(cast, dev, draft):
    url = f"{API}/rfcs/{draft.uuid}/"
    assert_error(
        api_client_for(cast["releasemgr"]).patch(url, {"title": "Not mine"}, format="json"),
        403,
        "permission_denied",
    )
    edited = dev.patch(url, {"title": "Raise the timeout to 5 s", "high_risk": True}, format="json")
    assert edited.status_code == 200, edited.content
    assert edited.json()["title"] == "Raise the timeout to 5 s" and edited.json()["high_risk"] is True
    assert AuditEvent.objects.filter(action="releases.rfc.updated").count() == 1


def test_put_replaces_the_content_and_impacts(cast, dev, draft, site_b):
    payload = rfc_payload(
        draft.release,
        title="Both plants",
        impacts=[{"site": "PLA", "lines": ["Line 2"]}, {"site": "PLB", "modules": ["Labelling"]}],
    )
    response = dev.put(f"{API}/rfcs/{draft.uuid}/", payload, format="json")
    assert response.status_code == 200, response.content
    assert [i["site"] for i in response.json()["impacts"]] == ["PLA", "PLB"]
    assert response.json()["sites"] == ["PLA", "PLB"]
    missing = dev.put(f"{API}/rfcs/{draft.uuid}/", {"title": "Only a title"}, format="json")
    assert "impacts" in assert_error(missing, 400)["fields"]


def test_refusals_by_role_and_state(cast, dev, tester, ready, site_a):
    release = ready.release
    draft = factories.rfc(cast["dev"], site_a, release=release)
    assert_error(tester.post(f"{API}/rfcs/", rfc_payload(release), format="json"), 403, "permission_denied")
    itmanager = api_client_for(cast["itmanager"])
    assert_error(
        itmanager.post(
            f"{API}/rfcs/{draft.uuid}/evidence/", {"file": factories.log(), "kind": "log"}, format="multipart"
        ),
        403,
    )
    assert itmanager.get(f"{API}/rfcs/{draft.uuid}/evidence/").status_code == 200
    assert itmanager.get(f"{API}/rfcs/{draft.uuid}/gates/").status_code == 200
    assert_error(api_client_for(cast["releasemgr"]).post(f"{API}/rfcs/{ready.uuid}/submit/"), 403)
    assert dev.post(f"{API}/rfcs/{ready.uuid}/submit/").status_code == 200
    late = tester.post(
        f"{API}/rfcs/{ready.uuid}/signoff/",
        {"site": "PLA", "comment": "again", "files": [factories.png()]},
        format="multipart",
    )
    assert_error(late, 409, "state_conflict")
    assert Rfc.objects.count() == 2 and UatSignoff.objects.count() == 1


def test_retrieve_shows_only_the_callers_actions(cast, dev, tester, ready):
    url = f"{API}/rfcs/{ready.uuid}/"
    body = dev.get(url).json()
    assert {a["name"] for a in body["actions"]} == {"submit", "cancel"}
    assert tester.get(url).json()["actions"] == []
    assert {a["name"] for a in api_client_for(cast["releasemgr"]).get(url).json()["actions"]} == {"cancel"}
    assert body["signoffs"][0]["signed_by"] == "tester" and body["signoffs"][0]["site"] == "PLA"
    assert body["evidence"][0]["kind"] == "signoff"


def test_transitions_through_the_api(cast, dev, ready):
    url = f"{API}/rfcs/{ready.uuid}/"
    assert dev.post(f"{url}submit/").status_code == 200
    assert (
        "reason"
        in assert_error(dev.post(f"{url}transition/", {"name": "withdraw"}, format="json"), 400)["detail"]
    )
    assert_error(
        api_client_for(cast["itmanager"]).post(
            f"{url}transition/", {"name": "cancel", "reason": "x"}, format="json"
        ),
        403,
    )
    assert_error(
        api_client_for(cast["admin"]).post(f"{url}transition/", {"name": "start_approval"}, format="json"),
        403,
    )
    assert_error(dev.post(f"{url}transition/", {"name": "close"}, format="json"), 409, "state_conflict")
    assert_error(dev.post(f"{url}transition/", {"name": "teleport"}, format="json"), 400)
    withdrawn = dev.post(f"{url}transition/", {"name": "withdraw", "reason": "Forgot line 3"}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "draft"
    cancelled = api_client_for(cast["releasemgr"]).post(
        f"{url}transition/", {"name": "cancel", "reason": "Dropped"}, format="json"
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert AuditEvent.objects.get(action="releases.rfc.cancelled").reason == "Dropped"
    assert_error(dev.post(f"{url}submit/"), 409)


def test_signoff_rules_through_the_api(cast, dev, tester, draft):
    url = f"{API}/rfcs/{draft.uuid}/signoff/"
    good = {"site": "PLA", "comment": "All fine on UAT."}
    own = api_client_for(cast["dev"])
    assert_error(own.post(url, {**good, "files": [factories.png()]}, format="multipart"), 403)
    assert_error(
        api_client_for(cast["itmanager"]).post(url, {**good, "files": [factories.png()]}, format="multipart"),
        403,
    )
    assert "files" in assert_error(tester.post(url, good, format="multipart"), 400)["fields"]
    assert_error(
        tester.post(url, {**good, "site": "NOPE", "files": [factories.png()]}, format="multipart"), 400
    )
    not_target = tester.post(url, {**good, "site": "PLB", "files": [factories.png()]}, format="multipart")
    assert "not a target" in assert_error(not_target, 400)["detail"]
    assert UatSignoff.objects.count() == 0 and stored() == []
    alias = tester.post(url, {**good, "files[]": [factories.png()]}, format="multipart")
    assert alias.status_code == 201, alias.content


def test_signoff_needs_a_success_in_uat_through_the_api(cast, tester, site_a):
    """X5, R6: a key user signs off only a release that succeeded in the site's UAT."""
    unproven = factories.rfc(cast["dev"], site_a)
    url = f"{API}/rfcs/{unproven.uuid}/signoff/"

    def body():
        return {"site": "PLA", "comment": "All fine on UAT.", "files": [factories.png()]}

    refused = assert_error(tester.post(url, body(), format="multipart"), 422)
    assert refused["rule"] == "Promotion order" and "has not succeeded in PLA UAT" in refused["detail"]
    factories.promote(unproven, site_a, tiers=("DEV",))
    assert_error(tester.post(url, body(), format="multipart"), 422)
    assert UatSignoff.objects.count() == 0
    factories.promote(unproven, site_a, tiers=("UAT",))
    assert tester.post(url, body(), format="multipart").status_code == 201


def test_evidence_can_be_superseded(dev, draft):
    url = f"{API}/rfcs/{draft.uuid}/evidence/"
    first = dev.post(url, {"file": factories.log(), "kind": "log"}, format="multipart").json()
    second = dev.post(
        url, {"file": factories.log("v2.log"), "kind": "log", "supersedes": first["uuid"]}, format="multipart"
    )
    assert second.status_code == 201, second.content
    rows = {row["uuid"]: row for row in dev.get(url).json()}
    assert rows[first["uuid"]]["superseded_by"] == second.json()["uuid"]
    again = dev.post(
        url, {"file": factories.log("v3.log"), "kind": "log", "supersedes": first["uuid"]}, format="multipart"
    )
    assert_error(again, 409)
    unknown = dev.post(
        url,
        {
            "file": factories.log("v4.log"),
            "kind": "log",
            "supersedes": "00000000-0000-0000-0000-000000000000",
        },
        format="multipart",
    )
    assert "supersedes" in assert_error(unknown, 400)["fields"]
    assert Evidence.objects.count() == 2 and len(stored()) == 2


# --- Releases ------------------------------------------------------------------------------------
def test_release_from_a_url_with_its_checksum(cast, dev):
    digest = hashlib.sha256(b"x").hexdigest()
    response = dev.post(
        f"{API}/releases/",
        {
            "product": "ERP-interface",
            "version": "3.2.1",
            "artifact_url": "https://artifacts.plant.test/erp.zip",
            "artifact_sha256": digest.upper(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["artifact_sha256"] == digest and response.json()["artifact_name"] == ""
    factories.release(cast["dev"], "1.0.1")
    assert [
        r["product"] for r in dev.get(f"{API}/releases/", {"product": "ERP-interface"}).json()["results"]
    ] == ["ERP-interface"]
    assert dev.get(f"{API}/releases/").json()["count"] == 2


def test_release_refusals(cast, dev, tester):
    url = f"{API}/releases/"
    no_digest = dev.post(
        url, {"product": "MES", "version": "1.2.0", "artifact_url": "https://a.test/x.zip"}, format="json"
    )
    assert "artifact_sha256" in assert_error(no_digest, 400)["fields"]
    assert (
        "version"
        in assert_error(dev.post(url, {"product": "MES", "version": "two"}, format="json"), 400)["detail"]
    )
    assert_error(tester.post(url, {"product": "MES", "version": "1.2.0"}, format="json"), 403)
    both = dev.post(
        url,
        {
            "product": "MES",
            "version": "1.2.0",
            "artifact_url": "https://a.test/x.zip",
            "artifact": SimpleUploadedFile("x.zip", b"zip"),
        },
        format="multipart",
    )
    assert_error(both, 400)
    factories.release(cast["dev"], "1.2.0")
    assert_error(dev.post(url, {"product": "MES", "version": "1.2.0"}, format="json"), 400)
    assert_error(dev.get(f"{url}not-a-uuid/"), 404, "not_found")
    assert_error(dev.get(f"{url}00000000-0000-0000-0000-000000000000/"), 404)
    assert_error(dev.delete(f"{url}{Release.objects.get().uuid}/"), 405)
    assert stored("artifacts") == []


def test_artifact_over_the_limit_is_413_and_nothing_is_stored(settings, dev):
    settings.ARTIFACT_MAX_BYTES = 1024
    response = dev.post(
        f"{API}/releases/",
        {"product": "MES", "version": "1.2.0", "artifact": SimpleUploadedFile("big.zip", b"x" * 2048)},
        format="multipart",
    )
    assert_error(response, 413, "too_large")
    assert Release.objects.count() == 0 and stored("artifacts") == []


# --- Bad uploads, hostile text, malformed input --------------------------------------------------
@pytest.mark.parametrize(
    "name,content,status",
    [
        ("report.pdf", b"<!doctype html><html><script>alert(1)</script></html>", 400),
        ("chart.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 400),
        ("big.log", b"x" * 4096, 413),
        ("empty.log", b"", 400),
    ],
    ids=["html-as-pdf", "svg-script", "over-limit", "empty"],
)
def test_bad_evidence_uploads_store_nothing(settings, dev, tester, draft, name, content, status):
    settings.EVIDENCE_MAX_BYTES = 2048
    before = stored()
    response = dev.post(
        f"{API}/rfcs/{draft.uuid}/evidence/",
        {"file": SimpleUploadedFile(name, content), "kind": "test_report"},
        format="multipart",
    )
    assert_error(response, status)
    signoff = tester.post(
        f"{API}/rfcs/{draft.uuid}/signoff/",
        {"site": "PLA", "comment": "ok", "files": [factories.png(), SimpleUploadedFile(name, content)]},
        format="multipart",
    )
    assert_error(signoff, status)
    assert stored() == before == []
    assert Evidence.objects.count() == 0 and UatSignoff.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="releases.evidence").exists()


def test_oversized_or_overfull_forms_are_json_errors(settings, dev, tester, draft):
    """Django refuses these while parsing (SuspiciousOperation); the API still answers JSON."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    big = dev.post(
        f"{API}/rfcs/{draft.uuid}/evidence/",
        {"file": factories.log(), "kind": "log", "description": "x" * 4096},
        format="multipart",
    )
    assert_error(big, 413, "too_large")
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    many = tester.post(
        f"{API}/rfcs/{draft.uuid}/signoff/",
        {
            "site": "PLA",
            "comment": "ok",
            "files": [factories.png("a.png"), factories.png("b.png"), factories.png("c.png")],
        },
        format="multipart",
    )
    assert_error(many, 400)
    assert stored() == [] and Evidence.objects.count() == 0


def test_xss_title_comes_back_verbatim_as_a_json_string(cast, dev):
    title = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    release = factories.release(cast["dev"], "1.0.1")
    created = dev.post(f"{API}/rfcs/", rfc_payload(release, title=title), format="json")
    assert created.status_code == 201
    for response in (dev.get(f"{API}/rfcs/{created.json()['uuid']}/"), dev.get(f"{API}/rfcs/")):
        assert response["Content-Type"] == "application/json"
        assert response.get("X-Content-Type-Options") == "nosniff"
        body = response.json()
        assert (body.get("title") or body["results"][0]["title"]) == title


def _malformed(draft_uuid):
    rfcs = f"{API}/rfcs/"
    one = f"{rfcs}{draft_uuid}/"
    return [
        ("get", f"{rfcs}not-a-uuid/", None, 404),
        ("get", f"{rfcs}RFC-2026-9999/", None, 404),
        ("get", f"{rfcs}00000000-0000-0000-0000-000000000000/gates/", None, 404),
        ("get", f"{rfcs}?state=nonsense", None, 400),
        ("get", f"{rfcs}?change_class=huge", None, 400),
        ("get", f"{rfcs}?q=%00", None, 400),
        ("get", f"{rfcs}?author=a%00b", None, 400),
        ("get", f"{API}/releases/?product=%00", None, 400),
        ("get", f"{one}gates/?stage=later", None, 400),
        ("post", rfcs, {}, 400),
        ("post", rfcs, {"release": "not-a-uuid"}, 400),
        ("post", rfcs, "RELEASE:00000000-0000-0000-0000-000000000000", 400),
        ("post", rfcs, "IMPACTS:not a list", 400),
        ("post", rfcs, "IMPACTS:[{}]", 400),
        ("post", rfcs, "IMPACTS:[]", 400),
        ("post", rfcs, "IMPACTS:unknown site", 400),
        ("post", rfcs, "IMPACTS:lines string", 400),
        ("post", rfcs, "IMPACTS:twice", 400),
        ("post", rfcs, "DOWNTIME:-5", 400),
        ("post", rfcs, "DOWNTIME:abc", 400),
        ("post", rfcs, "TITLE:overlong", 400),
        ("post", rfcs, [1, 2, 3], 400),
        ("patch", one, {"impacts": "PLA"}, 400),
        ("patch", one, {"release": 42}, 400),
        ("post", f"{one}evidence/", "EVIDENCE:bad kind", 400),
        ("post", f"{one}evidence/", "EVIDENCE:no file", 400),
        ("post", f"{one}evidence/", "EVIDENCE:bad supersedes", 400),
        ("post", f"{one}transition/", {}, 400),
        ("post", f"{one}transition/", {"name": ["cancel"]}, 400),
    ]


def _body(spec, release):
    if not isinstance(spec, str):
        return spec, "json"
    base = rfc_payload(release)
    kind, _, value = spec.partition(":")
    if kind == "RELEASE":
        return {**base, "release": value}, "json"
    if kind == "IMPACTS":
        impacts = {
            "not a list": "PLA",
            "[{}]": [{}],
            "[]": [],
            "unknown site": [{"site": "XXX", "lines": ["1"]}],
            "lines string": [{"site": "PLA", "lines": "Line 2"}],
            "twice": [{"site": "PLA", "lines": ["1"]}, {"site": "PLA", "lines": ["2"]}],
        }[value]
        return {**base, "impacts": impacts}, "json"
    if kind == "DOWNTIME":
        return {**base, "estimated_downtime_minutes": value}, "json"
    if kind == "TITLE":
        return {**base, "title": "x" * 201}, "json"
    if kind == "EVIDENCE":
        return {
            "bad kind": {"file": factories.log(), "kind": "selfie"},
            "no file": {"kind": "log"},
            "bad supersedes": {"file": factories.log(), "kind": "log", "supersedes": "zzz"},
        }[value], "multipart"
    raise AssertionError(spec)


def test_malformed_input_is_400_or_404_with_the_error_shape_never_500(cast, dev, draft):
    release = draft.release
    rfcs_before, events_before = Rfc.objects.count(), AuditEvent.objects.count()
    for method, path, spec, status in _malformed(draft.uuid):
        data, fmt = _body(spec, release) if spec is not None else (None, None)
        kwargs = {"format": fmt} if fmt else {}
        response = getattr(dev, method)(path, data, **kwargs)
        assert response.status_code == status, (method, path, spec, response.content)
        assert_error(response, status)
    broken = dev.generic("POST", f"{API}/rfcs/", '{"title": ', content_type="application/json")
    assert_error(broken, 400, "parse_error")
    assert Rfc.objects.count() == rfcs_before and AuditEvent.objects.count() == events_before
    assert Evidence.objects.count() == 0 and stored() == []


# --- Lists: filters and a query count that does not grow ------------------------------------------
def test_list_filters(cast, dev, site_a, site_b):
    release = factories.release(cast["dev"], "1.0.1")
    major = factories.release(cast["dev"], "2.0.0")
    a = factories.rfc(cast["dev"], site_a, release=release, title="Label timeout")
    b = factories.rfc(
        cast["dev"],
        site_b,
        release=release,
        title="Scanner driver",
        impacts=[{"site": site_b, "lines": ["Line 1"]}],
    )
    c = factories.rfc(
        make_user("dev2", Role.DEVELOPER),
        site_a,
        release=major,
        title="New MES screens",
        estimated_downtime_minutes=60,
        retraining_note="Half a day",
    )
    Rfc.objects.filter(pk=b.pk).update(state=RfcState.SUBMITTED)

    def numbers(**params):
        response = dev.get(f"{API}/rfcs/", params)
        assert response.status_code == 200, response.content
        return {row["number"] for row in response.json()["results"]}

    assert numbers() == {a.number, b.number, c.number}
    assert numbers(state="submitted") == {b.number}
    assert numbers(site="PLB") == {b.number}
    assert numbers(site="PLA") == {a.number, c.number}
    assert numbers(change_class="major") == {c.number}
    assert numbers(author="dev2") == {c.number}
    assert numbers(q="scanner") == {b.number}
    assert numbers(q=a.number) == {a.number}
    assert numbers(site="NOPE") == set()
    page = dev.get(f"{API}/rfcs/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def _list_queries(api, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"{API}/rfcs/", params or {})
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_is_the_same_for_10_and_100_rfcs(cast, site_a, site_b):
    api = api_client_for(cast["itmanager"])
    release = factories.release(cast["dev"], "1.0.1")
    authors = [cast["dev"], make_user("dev2", Role.DEVELOPER)]

    def add(count):
        for i in range(count):
            site = site_a if i % 2 else site_b
            factories.rfc(
                authors[i % 2],
                site,
                release=release,
                title=f"Change {i}",
                impacts=[{"site": site, "lines": [f"Line {i}"], "modules": ["MES"]}],
            )

    add(10)
    small, small_all = _list_queries(api), _list_queries(api, {"page_size": 200})
    add(90)
    assert Rfc.objects.count() == 100
    assert _list_queries(api) == small
    assert _list_queries(api, {"page_size": 200}) == small_all
    assert _list_queries(api, {"site": "PLA", "q": "Change"}) == small


def test_the_schema_documents_the_rfc_routes(client, cast):
    text = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/releases/",
        "/api/v1/rfcs/{uuid}/gates/",
        "/api/v1/rfcs/{uuid}/evidence/",
        "/api/v1/rfcs/{uuid}/submit/",
        "/api/v1/rfcs/{uuid}/signoff/",
        "/api/v1/rfcs/{uuid}/transition/",
    ):
        assert path in text
