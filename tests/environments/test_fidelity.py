"""The fidelity register (issue 19 item 1, seed 001): each environment lists its dependencies and how
it has each; an RFC names the dependencies it touches; the "Staging gaps accepted" gate (C5) fails
while a high-criticality one is simulated, replayed or absent in UAT, until a business owner accepts
that risk as a signed (C2), audited (C1) act bound to the artifact's SHA-256 (X5)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core.roles import Role
from deployments import fidelity as staging
from environments.models import Dependency, Environment, Tier
from releases import gates
from releases.models import Release, RiskAcceptance
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for, make_user
from workflow import fidelity as acceptance

pytestmark = pytest.mark.django_db

RULE = "Staging gaps accepted"
REASON = "WMS picks are replayed nightly in PROD shadow mode; the business carries the rest."


def env(site, tier: str) -> Environment:
    return Environment.objects.get(site=site, tier=tier)


def register(site, tier: str, **kinds) -> None:
    """register(site, "UAT", WMS=("simulator", "high"), ERP=("real", "medium"))"""
    for name, (kind, criticality) in kinds.items():
        Dependency.objects.create(environment=env(site, tier), name=name, kind=kind, criticality=criticality)


def gate(rfc) -> gates.Gate:
    [found] = [g for g in gates.evaluate(rfc, "schedule") if g.name == RULE]
    return found


@pytest.fixture
def wms_rfc(people, site_a):
    """A ready draft touching WMS and ERP at plant A, whose UAT only simulates WMS (high)."""
    register(site_a, Tier.UAT, WMS=("simulator", "high"), ERP=("test_endpoint", "high"))
    register(site_a, Tier.PROD, WMS=("real", "high"), ERP=("real", "high"))
    return factories.ready_rfc(people["dev"], people["tester"], site_a, dependencies=["wms", "ERP"])


def accept_page(user, rfc, password: str = PASSWORD, reason: str = REASON):
    return client_for(user).post(
        reverse("releases:accept_staging_gaps", args=[rfc.uuid]), {"reason": reason, "password": password}
    )


# --- The register on the environment page -----------------------------------------------------
def test_the_register_is_shown_and_edited_on_the_environment_page(cast, site_a):
    """E9, C1: whoever configures the environment adds, changes and removes dependencies, each audited."""
    client = client_for(cast["releasemgr"])
    url = reverse("environments:dependency_save", args=["PLA", "UAT"])
    response = client.post(
        url, {"name": "WMS", "kind": "simulator", "criticality": "high", "note": "Vendor sim"}
    )
    assert response.status_code == 302
    page = client.get(reverse("environments:detail", args=["PLA", "UAT"])).content.decode()
    assert 'data-testid="fidelity-register"' in page and "WMS" in page and "Simulator" in page

    client.post(url, {"name": "wms", "kind": "test_endpoint", "criticality": "high"})  # same name: a change
    [row] = env(site_a, Tier.UAT).dependencies.all()
    assert (row.name, row.kind, row.note) == ("wms", "test_endpoint", "")
    client.post(reverse("environments:dependency_remove", args=["PLA", "UAT", row.pk]))
    assert not Dependency.objects.exists()
    events = list(AuditEvent.objects.filter(action__startswith="environments.dependency.").order_by("seq"))
    assert [e.action for e in events] == [
        "environments.dependency.added",
        "environments.dependency.changed",
        "environments.dependency.removed",
    ]
    assert events[1].before["kind"] == "simulator" and events[1].after["kind"] == "test_endpoint"
    assert all(e.site_code == "PLA" and e.actor_name == "releasemgr" for e in events)


def test_only_who_configures_the_environment_edits_its_register(cast, site_a):
    """E4: a developer sees the register but may not change it (403, nothing saved)."""
    register(site_a, Tier.UAT, ERP=("real", "low"))
    client = client_for(cast["dev"])
    page = client.get(reverse("environments:detail", args=["PLA", "UAT"])).content.decode()
    assert "ERP" in page and 'data-testid="dependency-form"' not in page
    url = reverse("environments:dependency_save", args=["PLA", "UAT"])
    assert client.post(url, {"name": "WMS", "kind": "real", "criticality": "low"}).status_code == 403
    row = Dependency.objects.get()
    remove = reverse("environments:dependency_remove", args=["PLA", "UAT", row.pk])
    assert client.post(remove).status_code == 403
    assert list(Dependency.objects.values_list("name", flat=True)) == ["ERP"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "W" * 61, "kind": "real", "criticality": "low"}, "name"),
        ({"name": "WMS", "kind": "mirror", "criticality": "low"}, "kind"),
        ({"name": "WMS", "kind": "real", "criticality": "low", "note": "n" * 201}, "note"),
        ({"name": "", "kind": "real", "criticality": "low"}, "name"),
    ],
)
def test_bad_register_input_is_refused_with_nothing_saved(cast, data, field):
    response = client_for(cast["admin"]).post(
        reverse("environments:dependency_save", args=["PLA", "UAT"]), data
    )
    assert response.status_code == 400
    assert field in response.context["dependency_form"].errors
    assert (
        not Dependency.objects.exists()
        and not AuditEvent.objects.filter(action__contains="dependency").exists()
    )


def test_a_nul_byte_is_refused(cast):
    response = client_for(cast["admin"]).post(
        reverse("environments:dependency_save", args=["PLA", "UAT"]),
        {"name": "W\x00MS", "kind": "real", "criticality": "low"},
    )
    assert response.status_code == 400 and not Dependency.objects.exists()


def test_the_admin_edits_the_register_inline_audited(cast, site_a):
    """C1: the admin's environment form carries the register; the change is in the audit trail."""
    from tests.environments.test_calendar_admin import _inline
    from tests.plant.test_pipeline_rules import _admin_data

    uat = env(site_a, Tier.UAT)
    client = client_for(cast["admin"])
    url = reverse("admin:environments_environment_change", args=[uat.pk])
    data = {
        **_admin_data(uat, uat.pipeline),
        **_inline("dependencies", [], {"name": "WMS", "kind": "simulator", "criticality": "high"}),
    }
    response = client.post(url, data)
    assert response.status_code == 302
    assert uat.dependencies.get().kind == "simulator"
    event = AuditEvent.objects.filter(action="environments.environment.updated").latest("seq")
    assert event.after["dependencies"][0]["dependency"] == "WMS" and event.before["dependencies"] == []


# --- The RFC names what it touches ------------------------------------------------------------
def test_the_rfc_names_its_dependencies_in_the_form_and_the_api(cast, site_a):
    """R1: the form and the API take the names, trimmed and each once; too many or too long is a 400."""
    rfc = factories.rfc(cast["dev"], site_a, dependencies=[" WMS ", "wms", "ERP"])
    assert rfc.dependencies == ["WMS", "ERP"] and rfc.snapshot()["dependencies"] == ["WMS", "ERP"]
    api = api_client_for(cast["dev"])
    body = api.patch(f"/api/v1/rfcs/{rfc.uuid}/", {"dependencies": ["Supplier API"]}, format="json")
    assert body.status_code == 200 and body.json()["dependencies"] == ["Supplier API"]
    too_long = api.patch(f"/api/v1/rfcs/{rfc.uuid}/", {"dependencies": ["x" * 61]}, format="json")
    assert too_long.status_code == 400 and "dependencies" in too_long.json()["fields"]
    too_many = api.patch(
        f"/api/v1/rfcs/{rfc.uuid}/", {"dependencies": [f"S{i}" for i in range(21)]}, format="json"
    )
    assert too_many.status_code == 400
    rfc.refresh_from_db()
    assert rfc.dependencies == ["Supplier API"]

    form = client_for(cast["dev"]).get(reverse("releases:edit", args=[rfc.uuid])).content.decode()
    assert 'name="dependencies"' in form and "Supplier API" in form


# --- The RFC page and the gate ----------------------------------------------------------------
def test_the_rfc_page_shows_how_uat_has_each_touched_dependency(people, wms_rfc):
    """The RFC page: per site, the touched dependencies and how UAT has them, the simulated one flagged."""
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[wms_rfc.uuid])).content.decode()
    assert 'data-testid="fidelity-PLA"' in page
    assert "UAT only has a simulator of WMS: a green UAT says little about it." in page
    assert "Tested against the real system or its test endpoint." in page  # ERP


def test_the_gate_fails_for_a_simulated_critical_dependency_and_passes_once_accepted(people, wms_rfc):
    """C5, C2, C1: the plant director accepts with the password; the gate passes, naming who."""
    failing = gate(wms_rfc)
    assert not failing.passed and "PLA UAT has WMS as simulator" in failing.reason
    assert not gates.waivable(RULE)
    assert RULE in [g.name for g in gates.failing(wms_rfc, "deploy")]
    assert RULE not in [g.name for g in gates.evaluate(wms_rfc, "submit")]

    response = accept_page(people["plantdirector"], wms_rfc)
    assert response.status_code == 302
    passed = gate(wms_rfc)
    assert passed.passed and "Accepted: PLA UAT has WMS as simulator" in passed.reason
    assert "Plantdirector" in passed.reason
    [row] = RiskAcceptance.objects.all()
    assert row.artifact_sha256 == wms_rfc.release.artifact_sha256 and row.reason == REASON
    assert row.gaps == [{"site": "PLA", "tier": "UAT", "dependency": "WMS", "kind": "simulator"}]
    event = AuditEvent.objects.get(action="releases.staging_gaps.accepted")
    assert event.actor_name == "plantdirector" and event.reason == REASON
    assert event.after["artifact_sha256"] == row.artifact_sha256 and event.after["gaps"] == row.gaps

    page = client_for(people["dev"]).get(reverse("releases:detail", args=[wms_rfc.uuid])).content.decode()
    assert 'data-testid="acceptance"' in page and REASON in page


def test_a_wrong_password_is_refused_and_saves_nothing(people, wms_rfc):
    """C2: a wrong password is a 400, audited as a refused attempt; no acceptance, the gate still fails."""
    response = accept_page(people["opsmanager"], wms_rfc, password="not-it")
    assert response.status_code == 400
    assert "the acceptance was not recorded" in response.content.decode()
    assert not RiskAcceptance.objects.exists() and not gate(wms_rfc).passed
    assert AuditEvent.objects.filter(action="releases.staging_gaps.acceptance_refused").count() == 1
    assert not AuditEvent.objects.filter(action="releases.staging_gaps.accepted").exists()


@pytest.mark.parametrize("who", ["releasemgr", "admin", "itmanager", "dev"])
def test_only_a_business_owner_of_the_site_accepts(people, wms_rfc, who):
    """A1: IT roles and admins prove the change; the business owns the risk: 403, nothing saved."""
    page = client_for(people[who]).get(reverse("releases:detail", args=[wms_rfc.uuid])).content.decode()
    assert 'data-testid="accept-risk-form"' not in page
    assert accept_page(people[who], wms_rfc).status_code == 403
    assert not RiskAcceptance.objects.exists()


def test_a_business_owner_of_another_target_site_may_not_accept(people, site_a, site_b):
    """The gap is plant A's: the plant director of plant B (who sees the RFC) may not accept it."""
    register(site_a, Tier.UAT, WMS=("absent", "high"))
    register(site_a, Tier.PROD, WMS=("real", "high"))
    rfc = factories.rfc(
        people["dev"],
        site_a,
        dependencies=["WMS"],
        impacts=[{"site": s, "lines": ["Line 2"], "modules": ["Labelling"]} for s in (site_a, site_b)],
    )
    owner_b = make_user("director_b", Role.PLANT_DIRECTOR, site=site_b)
    assert accept_page(owner_b, rfc).status_code == 403
    assert not RiskAcceptance.objects.exists()
    assert accept_page(make_user("director_a", Role.PLANT_DIRECTOR, site=site_a), rfc).status_code == 302


@pytest.mark.parametrize("reason", ["", "   ", "r" * 2001])
def test_a_missing_or_absurd_reason_is_refused(people, wms_rfc, reason):
    assert accept_page(people["plantdirector"], wms_rfc, reason=reason).status_code == 400
    assert not RiskAcceptance.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="releases.staging_gaps").exists()


def test_a_nul_in_the_reason_is_refused(people, wms_rfc):
    assert accept_page(people["plantdirector"], wms_rfc, reason="fine\x00").status_code == 400
    assert not RiskAcceptance.objects.exists()


def test_a_new_artifact_voids_the_acceptance(people, wms_rfc):
    """X5: the acceptance is bound to the artifact's SHA-256; a new artifact needs a new one."""
    acceptance.accept(people["plantdirector"], wms_rfc, REASON, PASSWORD)
    assert gate(wms_rfc).passed
    Release.objects.filter(pk=wms_rfc.release_id).update(artifact_sha256="b" * 64)
    wms_rfc.refresh_from_db()
    assert not gate(wms_rfc).passed
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[wms_rfc.uuid])).content.decode()
    assert "for an earlier artifact: it no longer counts" in page


def test_a_changed_gap_needs_a_new_acceptance(people, site_a, wms_rfc):
    """The acceptance covers the gap as it was: WMS simulated, not WMS gone."""
    acceptance.accept(people["plantdirector"], wms_rfc, REASON, PASSWORD)
    Dependency.objects.filter(environment__tier="UAT", name="WMS").update(kind="absent")
    assert not gate(wms_rfc).passed


def test_a_dependency_missing_from_the_uat_register_counts_as_absent(people, site_a):
    """Fail closed: UAT does not list the Historian, PROD has it as high: a gap to accept."""
    register(site_a, Tier.PROD, Historian=("real", "high"))
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, dependencies=["Historian"])
    [touch] = staging.touches(rfc)
    assert touch.kind == "absent" and not touch.registered and touch.needs_acceptance
    failing = gate(rfc)
    assert not failing.passed and "PLA UAT does not list Historian (counted as absent)" in failing.reason
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "UAT has no Historian: a green UAT says nothing about it." in page


def test_a_dependency_unknown_in_prod_fails_and_says_what_to_configure(people, site_a):
    register(site_a, Tier.UAT, WMS=("real", "low"))
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, dependencies=["WMS"])
    failing = gate(rfc)
    assert not failing.passed
    assert "PLA PROD does not list WMS: add it to the dependency register of PLA PROD" in failing.reason
    assert not acceptance.may_accept(people["plantdirector"], rfc)  # nothing to accept: configure it


def test_lower_criticality_gaps_and_no_dependencies_pass(people, site_a):
    register(site_a, Tier.UAT, Identity=("replay", "medium"))
    register(site_a, Tier.PROD, Identity=("real", "medium"))
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, dependencies=["Identity"])
    assert gate(rfc).passed
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "UAT only has a replay of Identity" in page  # shown, though not gated
    plain = factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.2")
    assert gate(plain).passed and gate(plain).reason == "The RFC names no dependency it touches."


def test_prod_criticality_counts_when_uat_plays_it_down(people, site_a):
    register(site_a, Tier.UAT, WMS=("simulator", "low"))
    register(site_a, Tier.PROD, WMS=("real", "high"))
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, dependencies=["WMS"])
    assert not gate(rfc).passed


def test_a_site_without_uat_is_proven_on_dev(people):
    from tests.conftest import make_site

    site = make_site("DVP", tiers=(Tier.DEV, Tier.PROD))
    register(site, Tier.DEV, WMS=("simulator", "high"))
    register(site, Tier.PROD, WMS=("real", "high"))
    rfc = factories.ready_rfc(people["dev"], people["tester"], site, dependencies=["WMS"])
    assert "DVP DEV has WMS as simulator" in gate(rfc).reason
