"""Gate waivers (C5, C1, C2): a release manager lets one RFC past one failing computed-evidence gate, as a
signed and audited act bound to the artifact's SHA-256; decisions and hard rules (A1–A6, W1–W5, X5, R1,
R3, R6) are never waivable. The page, the API, the worker's gates and the evidence pack agree."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core.roles import Role
from environments.models import Environment, Tier
from releases import gates
from releases.models import GateWaiver
from reports import evidence_pack
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for, make_user
from workflow import services as wf
from workflow import waivers

pytestmark = pytest.mark.django_db

FRESH = "UAT data fresh"
REASON = "PROD copy restore is booked for tonight; this change touches no table."


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def stale(cast, site_a):
    """A ready draft whose UAT data was never refreshed: 'UAT data fresh' fails, nothing else computed."""
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    Environment.objects.filter(site=site_a, tier=Tier.UAT).update(data_refreshed_at=None)
    return rfc


def gate(rfc, name: str, stage: str = "schedule") -> gates.Gate:
    [found] = [g for g in gates.evaluate(rfc, stage) if g.name == name]
    return found


def waive_api(user, rfc, gate_name: str = FRESH, password: str = PASSWORD, reason: str = REASON):
    return api_client_for(user).post(
        f"/api/v1/rfcs/{rfc.uuid}/waivers/",
        {"gate": gate_name, "reason": reason, "password": password},
        format="json",
    )


def test_a_release_manager_waives_a_failing_gate_through_the_api(cast, stale):
    """C5, C1, E3: the waiver makes the gate pass as waived, naming who, when, why and what the check
    said; the audit event names the gate, the reason, the failing reason and the artifact's SHA-256."""
    said = gate(stale, FRESH).reason
    assert not gate(stale, FRESH).passed and "never refreshed from PROD" in said

    response = waive_api(cast["releasemgr"], stale)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["gate"] == FRESH and body["waived_by"] == "releasemgr" and body["live"] is True
    assert body["failing_reason"] == said and body["artifact_sha256"] == stale.release.artifact_sha256

    waived = gate(stale, FRESH)
    assert waived.passed and waived.waived and waived.waived_by == "Releasemgr"
    assert waived.reason.startswith("Waived by Releasemgr on ")
    assert f": {REASON} (the check said: {said})" in waived.reason
    assert FRESH not in [g.name for g in gates.failing(stale, "deploy")]  # the worker's question too

    listed = api_client_for(cast["dev"]).get(f"/api/v1/rfcs/{stale.uuid}/gates/?stage=schedule").json()
    [shown] = [g for g in listed if g["name"] == FRESH]
    assert shown["passed"] and shown["waived"] and shown["waived_by"] == "Releasemgr" and shown["waived_at"]
    assert {"name", "passed", "reason"} <= set(shown)
    assert [
        w["gate"] for w in api_client_for(cast["dev"]).get(f"/api/v1/rfcs/{stale.uuid}/waivers/").json()
    ] == [FRESH]

    event = AuditEvent.objects.get(action="releases.gate.waived")
    assert event.actor_name == "releasemgr" and event.object_id == stale.number and event.reason == REASON
    assert event.after == {
        "waiver": body["id"],
        "gate": FRESH,
        "reason": REASON,
        "failing_reason": said,
        "artifact_sha256": stale.release.artifact_sha256,
    }


def test_a_developer_may_not_waive(cast, stale):
    """C5, E7: only a release manager or an admin of the RFC's sites waives: 403, nothing recorded."""
    assert waive_api(cast["dev"], stale).status_code == 403
    assert waive_api(cast["tester"], stale).status_code == 403
    assert not GateWaiver.objects.exists() and not gate(stale, FRESH).passed


def test_a_release_manager_of_another_site_may_not_waive(cast, stale, site_b):
    """C5, E7: a release manager of plant B only holds no authority over plant A's gates."""
    other = make_user("rm_b", Role.RELEASE_MANAGER, site=site_b)
    assert waive_api(other, stale).status_code in (403, 404)
    assert not GateWaiver.objects.exists()


@pytest.mark.parametrize(
    "name", ["Approvals complete", "Promotion order", "UAT sign-off", "Artifact checksum", "Impact analysis"]
)
def test_decisions_and_hard_rules_are_not_waivable(cast, stale, name):
    """C5, A6, X5, R6, R1: a gate that carries a person's decision or a hard rule answers 422 naming it."""
    response = waive_api(cast["releasemgr"], stale, name)
    assert response.status_code == 422
    assert response.json()["rule"] == name
    assert not GateWaiver.objects.exists()


def test_a_wrong_password_records_no_waiver(cast, stale):
    """C5, C1: the waiver is a signed act: a wrong password is a 400 on the password field, no waiver and
    no waiver event is recorded (the refused attempt is audited, as for signatures)."""
    response = waive_api(cast["releasemgr"], stale, password="not-my-password")
    assert response.status_code == 400
    assert "password" in str(response.json())
    assert not GateWaiver.objects.exists() and not gate(stale, FRESH).passed
    assert not AuditEvent.objects.filter(action="releases.gate.waived").exists()
    assert AuditEvent.objects.filter(action="releases.gate.waiver_refused", reason="wrong password").exists()


def test_nothing_to_waive_on_a_passing_gate_and_a_reason_is_needed(cast, site_a):
    """C5: a passing gate is not waived (409); a waiver without a reason is a 400."""
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    assert gate(rfc, FRESH).passed
    assert waive_api(cast["releasemgr"], rfc).status_code == 409
    Environment.objects.filter(site=site_a, tier=Tier.UAT).update(data_refreshed_at=None)
    assert waive_api(cast["releasemgr"], rfc, reason="  ").status_code == 400
    assert not GateWaiver.objects.exists()


def test_a_new_artifact_voids_the_waiver_and_a_waiver_may_be_revoked(cast, stale):
    """C5, X5: the waiver is bound to the artifact's SHA-256: another artifact fails the gate again.
    Revoking is audited and makes the gate fail again too."""
    waiver = waivers.waive(cast["releasemgr"], stale, FRESH, REASON, PASSWORD)
    assert gate(stale, FRESH).waived

    revoked = waivers.revoke(cast["releasemgr"], waiver, "The restore was cancelled.")
    assert revoked.revoked_at is not None and not gate(stale, FRESH).passed
    assert AuditEvent.objects.filter(action="releases.gate.waiver_revoked").count() == 1

    waivers.waive(cast["admin"], stale, FRESH, REASON, PASSWORD)
    assert gate(stale, FRESH).waived
    wf.update_rfc(cast["dev"], stale, release=factories.release(cast["dev"], "1.0.2"))
    stale.refresh_from_db()
    again = gate(stale, FRESH)
    assert not again.passed and not again.waived and "never refreshed from PROD" in again.reason
    listed = api_client_for(cast["dev"]).get(f"/api/v1/rfcs/{stale.uuid}/waivers/").json()
    assert [w["live"] for w in listed] == [False, False]


def test_the_rfc_page_offers_the_waiver_and_shows_it(cast, stale):
    """C5, C2: a release manager sees a waive form beside the failing waivable gate (a developer does
    not); a wrong password re-renders the page with the refusal; a waived gate reads as waived, with
    who, when and why, and the waivers list shows it."""
    url = reverse("releases:detail", args=[stale.uuid])
    assert 'data-testid="waive-form"' not in client_for(cast["dev"]).get(url).content.decode()
    page = client_for(cast["releasemgr"]).get(url).content.decode()
    assert page.count('data-testid="waive-form"') == 1 and 'value="UAT data fresh"' in page

    client = client_for(cast["releasemgr"])
    refused = client.post(
        reverse("releases:waive", args=[stale.uuid]), {"gate": FRESH, "reason": REASON, "password": "nope"}
    )
    assert refused.status_code == 400 and 'data-testid="waive-error"' in refused.content.decode()
    assert not GateWaiver.objects.exists()

    done = client.post(
        reverse("releases:waive", args=[stale.uuid]), {"gate": FRESH, "reason": REASON, "password": PASSWORD}
    )
    assert done.status_code == 302
    page = client_for(cast["dev"]).get(url).content.decode()
    assert 'data-testid="waived-gate"' in page and "Waived by Releasemgr on" in page
    assert 'data-testid="waiver"' in page and REASON in page
    assert "releases.gate.waived" in page  # the timeline


def test_the_evidence_pack_lists_the_waiver(cast, stale, media):
    """C2: the evidence pack names every waiver: gate, who, when, why, and what the check said."""
    waivers.waive(cast["releasemgr"], stale, FRESH, REASON, PASSWORD)
    data = evidence_pack.pack_data(stale)
    [waiver] = data["waivers"]
    assert waiver["gate"] == FRESH and waiver["waived_by"]["username"] == "releasemgr"
    assert waiver["reason"] == REASON and "never refreshed from PROD" in waiver["failing_reason"]
    assert waiver["counts"] and waiver["waived_at_utc"]
    [shown] = [g for g in data["gates"] if g["name"] == FRESH]
    assert shown["waived"] and shown["passed"]
    assert evidence_pack.render_pdf(data).startswith(b"%PDF")


def test_revoking_through_the_api(cast, stale):
    """C5, C1: a release manager revokes with a reason (audited); a developer may not."""
    waiver = waivers.waive(cast["releasemgr"], stale, FRESH, REASON, PASSWORD)
    url = f"/api/v1/rfcs/{stale.uuid}/waivers/{waiver.pk}/revoke/"
    assert api_client_for(cast["dev"]).post(url, {"reason": "no"}, format="json").status_code == 403
    assert api_client_for(cast["releasemgr"]).post(url, {}, format="json").status_code == 400
    response = api_client_for(cast["releasemgr"]).post(url, {"reason": "Restore cancelled."}, format="json")
    assert response.status_code == 200 and response.json()["live"] is False
    assert (
        response.json()["revoked_by"] == "releasemgr"
        and response.json()["revoke_reason"] == "Restore cancelled."
    )
    assert not gate(stale, FRESH).passed
    assert api_client_for(cast["releasemgr"]).post(url, {"reason": "again"}, format="json").status_code == 409
    event = AuditEvent.objects.get(action="releases.gate.waiver_revoked")
    assert event.reason == "Restore cancelled." and event.after["gate"] == FRESH
