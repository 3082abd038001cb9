"""Several products per environment: a plant manages its MES and its ERP in one portal, each with its
own version in each tier (E9), its own class of change (R5) and its own drift between tiers (E8)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from audit.models import AuditEvent
from core import clock
from environments.models import Environment, ProductVersion, Tier
from environments.services import record_deployed_version
from plant import evidence
from releases.services import classify_rfc
from releases.versioning import ChangeClass, VersionRefused
from tests import factories
from tests.conftest import api_client_for, client_for

pytestmark = pytest.mark.django_db


def env(site, tier: str) -> Environment:
    return Environment.objects.get(site=site, tier=tier)


def runs(site, tier: str, **versions: str) -> Environment:
    """The environment runs exactly these products (MES, ERP…) at these versions."""
    environment = env(site, tier)
    ProductVersion.objects.filter(environment=environment).delete()
    for offset, (product, version) in enumerate(versions.items()):
        ProductVersion.objects.create(
            environment=environment,
            product=product,
            version=version,
            updated_at=clock.now() + timedelta(seconds=offset),
        )
    return environment


def posted_config(environment: Environment) -> dict:
    """An environment's configuration as its edit form posts it back unchanged (a PROD one)."""
    return {
        "purpose": environment.purpose,
        "data_policy": environment.data_policy,
        "access_policy": environment.access_policy,
        "sla": environment.sla,
        "equipment_writes": "on",
        "windows_enforced": "on",
        "smoke_test_minutes": "15",
        "rollback_budget_minutes": "15",
    }


def deployment_of(release) -> SimpleNamespace:
    """What the engine's commit step hands over: the deployment of an RFC for `release`."""
    return SimpleNamespace(rfc=SimpleNamespace(release=release, number="RFC-2026-0099"), uuid=uuid.uuid4())


def test_an_environment_runs_several_products_each_at_its_own_version(site_a):
    """E9: MES and ERP side by side; `active_version` is the one product's version, or with several
    the version of the product updated last."""
    prod = runs(site_a, "PROD", MES="2.3.1")
    assert (prod.versions, prod.active_version) == ({"MES": "2.3.1"}, "2.3.1")
    prod = runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0")
    assert prod.versions == {"ERP": "1.4.0", "MES": "2.3.1"}
    assert prod.active_version == "1.4.0"  # ERP was recorded last
    ProductVersion.objects.filter(environment=prod, product="MES").update(
        updated_at=clock.now() + timedelta(hours=1)
    )
    assert env(site_a, "PROD").active_version == "2.3.1"
    assert runs(site_a, "DEV").active_version == ""


def test_change_class_is_per_product_on_the_same_site(cast, site_a):
    """R5: an ERP minor and an MES major on the same site classify independently, each against its
    own product in PROD."""
    runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0")
    erp = factories.release(cast["dev"], "1.5.0", product="ERP")
    mes = factories.release(cast["dev"], "3.0.0", product="MES")
    assert classify_rfc(erp, [site_a]) == ChangeClass.MINOR
    assert classify_rfc(mes, [site_a]) == ChangeClass.MAJOR
    assert classify_rfc(factories.release(cast["dev"], "1.4.1", product="ERP"), [site_a]) == ChangeClass.PATCH
    erp_rfc = factories.rfc(cast["dev"], site_a, release=erp)
    mes_rfc = factories.rfc(
        cast["dev"], site_a, release=mes, estimated_downtime_minutes=60, retraining_note="Half a day"
    )
    assert (erp_rfc.change_class, mes_rfc.change_class) == (ChangeClass.MINOR, ChangeClass.MAJOR)


def test_a_product_new_to_the_site_is_a_new_installation_not_a_downgrade(cast, site_a):
    """R5, E9: ERP 1.0.0 on a site whose PROD runs MES 2.3.1 is accepted: nothing of ERP runs there,
    so it counts from 0.0.0, a major change (downtime and training for a new installation)."""
    runs(site_a, "PROD", MES="2.3.1")
    erp = factories.release(cast["dev"], "1.0.0", product="ERP")
    assert classify_rfc(erp, [site_a]) == ChangeClass.MAJOR
    prod = env(site_a, "PROD")
    assert record_deployed_version(prod, "1.0.0", deployment_of(erp)) == ""
    assert env(site_a, "PROD").versions == {"ERP": "1.0.0", "MES": "2.3.1"}
    event = AuditEvent.objects.get(action="environments.environment.deployed")
    assert (event.before, event.after) == (
        {"product": "ERP", "version": ""},
        {"product": "ERP", "version": "1.0.0"},
    )


def test_a_downgrade_of_one_product_is_still_refused(cast, site_a, site_b):
    """R5: ERP 1.3.0 against the ERP 1.4.0 in PROD is a downgrade, however old the MES beside it."""
    runs(site_a, "PROD", MES="0.9.0", ERP="1.4.0")
    with pytest.raises(VersionRefused, match="PLA: ERP 1.3.0 is older than 1.4.0, which runs in PROD"):
        classify_rfc(factories.release(cast["dev"], "1.3.0", product="ERP"), [site_a])
    with pytest.raises(VersionRefused, match="already runs in PROD"):
        classify_rfc(factories.release(cast["dev"], "1.4.0", product="ERP"), [site_a, site_b])


def test_a_deployment_records_only_its_own_product(cast, site_a):
    """E9: the commit step moves the deployed product's version; the other products keep theirs."""
    uat = runs(site_a, "UAT", MES="2.3.1", ERP="1.4.0")
    erp = factories.release(cast["dev"], "1.5.0", product="ERP")
    assert record_deployed_version(uat, "1.5.0", deployment_of(erp)) == "1.4.0"
    assert env(site_a, "UAT").versions == {"ERP": "1.5.0", "MES": "2.3.1"}
    assert record_deployed_version(uat, "1.5.0", deployment_of(erp)) == "1.5.0"  # nothing new: no event
    assert AuditEvent.objects.filter(action="environments.environment.deployed").count() == 1


def test_drift_is_a_line_per_product(site_a):
    """E8: the fingerprint holds every product's version; drift names each product that differs and
    each one that runs in one tier only."""
    uat = runs(site_a, "UAT", MES="2.4.0", LABELS="1.0.0", ERP="1.4.0")
    prod = runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0", SCALES="3.1.0")
    assert evidence.compute_fingerprint(env(site_a, "UAT"))["versions"] == {
        "ERP": "1.4.0",
        "LABELS": "1.0.0",
        "MES": "2.4.0",
    }
    Environment.objects.filter(pk=uat.pk).update(
        fingerprint={"versions": env(site_a, "UAT").versions, "adapters": []}
    )
    Environment.objects.filter(pk=prod.pk).update(
        fingerprint={"versions": env(site_a, "PROD").versions, "adapters": []}
    )
    assert evidence.drift(env(site_a, "UAT"), env(site_a, "PROD")) == [
        "LABELS: only in UAT (1.0.0), not in PROD",
        "MES: UAT 2.4.0, PROD 2.3.1",
        "SCALES: only in PROD (3.1.0), not in UAT",
    ]


def test_the_api_lists_products_and_keeps_active_version(cast, site_a):
    """E9 and the API contract: an environment keeps `active_version` and lists its `products`;
    products are set by name, and a single `active_version` is refused where it would be ambiguous."""
    prod = runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0")
    api = api_client_for(cast["admin"])
    body = api.get(f"/api/v1/environments/{prod.pk}/").json()
    assert body["products"] == [
        {"product": "ERP", "version": "1.4.0"},
        {"product": "MES", "version": "2.3.1"},
    ]
    assert body["active_version"] == "1.4.0"
    listed = api.get("/api/v1/environments/", {"site": site_a.code, "tier": "PROD"}).json()["results"]
    assert listed[0]["products"] == body["products"]

    changed = api.patch(
        f"/api/v1/environments/{prod.pk}/",
        {"products": [{"product": "ERP", "version": "1.4.1"}], "reason": "hotfix recorded by hand"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert {row["product"]: row["version"] for row in changed.json()["products"]} == {
        "ERP": "1.4.1",
        "MES": "2.3.1",
    }
    event = AuditEvent.objects.get(action="environments.environment.updated")
    assert event.before["versions"] == {"ERP": "1.4.0", "MES": "2.3.1"}
    assert event.after["versions"] == {"ERP": "1.4.1", "MES": "2.3.1"}

    ambiguous = api.patch(
        f"/api/v1/environments/{prod.pk}/", {"active_version": "3.0.0", "reason": "x"}, format="json"
    )
    assert ambiguous.status_code == 400 and "active_version" in ambiguous.json()["detail"]
    bad = api.patch(
        f"/api/v1/environments/{prod.pk}/",
        {"products": [{"product": "ERP", "version": "two"}], "reason": "x"},
        format="json",
    )
    assert bad.status_code == 400
    refused = api_client_for(cast["releasemgr"]).patch(
        f"/api/v1/environments/{prod.pk}/",
        {"products": [{"product": "ERP", "version": "9.0.0"}], "reason": "x"},
        format="json",
    )
    assert refused.status_code == 403  # E4: in PROD only a system admin sets a version by hand
    assert env(site_a, "PROD").versions == {"ERP": "1.4.1", "MES": "2.3.1"}


def test_the_pages_show_every_product_and_its_version(cast, site_a):
    """E9: the environment page, the board and the home page show each product with its version."""
    runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0")
    client = client_for(cast["releasemgr"])
    page = client.get(f"/environments/{site_a.code}/PROD/").content.decode()
    assert 'data-testid="products"' in page
    for text in ('<th scope="row">MES</th>', "2.3.1", '<th scope="row">ERP</th>', "1.4.0"):
        assert text in page, text
    for url in ("/environments/", "/"):
        html = client.get(url).content.decode()
        assert "ERP" in html and "1.4.0" in html and "2.3.1" in html, url


def test_an_admin_adds_a_product_on_the_edit_page(cast, site_a):
    """E9, E4: a system admin records by hand that PROD also runs ERP; the release manager, who
    configures PROD, sees the version fields disabled."""
    prod = env(site_a, "PROD")
    form = {
        **posted_config(prod),
        "version_0": "1.0.0",
        "new_product": "ERP",
        "new_version": "1.4.0",
        "reason": "ERP joins the portal",
    }
    manager = client_for(cast["releasemgr"])
    assert manager.post(f"/environments/{site_a.code}/PROD/edit/", form).status_code == 302
    assert env(site_a, "PROD").versions == {"MES": "1.0.0"}  # disabled fields ignore what is posted
    admin = client_for(cast["admin"])
    edit = admin.get(f"/environments/{site_a.code}/PROD/edit/").content.decode()
    assert "MES version" in edit and "Add a product" in edit
    half = admin.post(f"/environments/{site_a.code}/PROD/edit/", {**form, "new_version": ""})
    assert half.status_code == 400 and "Give the product and its version." in half.content.decode()
    assert admin.post(f"/environments/{site_a.code}/PROD/edit/", form).status_code == 302
    assert env(site_a, "PROD").versions == {"ERP": "1.4.0", "MES": "1.0.0"}


def test_each_product_is_recorded_once_per_environment(site_a):
    """E9: one row per product and environment (the database says so, not only the forms)."""
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ProductVersion.objects.create(environment=env(site_a, Tier.PROD), product="MES", version="2.0.0")


def test_the_admin_edits_products_inline_audited(cast, site_a):
    """E9, C1: the admin's environment page lists the products inline; a version changed there is
    stamped now (so the API's `active_version` follows it) and audited with before and after."""
    import json

    from tests.environments.test_calendar_admin import _inline

    prod = runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0")
    rows = [
        {"id": row.pk, "environment": prod.pk, "product": row.product, "version": row.version}
        for row in prod.products.order_by("product")
    ]
    rows[1]["version"] = "2.3.2"  # MES
    data = {
        "site": site_a.pk,
        "tier": "PROD",
        **posted_config(prod),
        "refresh_every_days": "0",
        "pipeline": json.dumps(prod.pipeline),
        "audit_reason": "MES hotfix installed by the vendor",
        **_inline("products", rows, {"environment": prod.pk, "product": "LABELS", "version": "0.3.0"}),
        **_inline("dependencies", []),
    }
    response = client_for(cast["admin"]).post(f"/admin/environments/environment/{prod.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert env(site_a, "PROD").versions == {"ERP": "1.4.0", "LABELS": "0.3.0", "MES": "2.3.2"}
    event = AuditEvent.objects.get(action="environments.environment.updated")
    assert event.before["versions"] == {"ERP": "1.4.0", "MES": "2.3.1"}
    assert event.after["versions"] == {"ERP": "1.4.0", "LABELS": "0.3.0", "MES": "2.3.2"}
    assert (
        client_for(cast["releasemgr"]).get(f"/admin/environments/environment/{prod.pk}/change/").status_code
        == 302
    )


def test_the_rfc_page_shows_what_each_tier_runs_of_the_releases_product(cast, site_a):
    """E9, R5: the promotion row of an ERP change shows each tier's ERP, not the MES beside it."""
    from django.urls import reverse

    runs(site_a, "PROD", MES="2.3.1", ERP="1.4.0")
    runs(site_a, "UAT", MES="2.3.1")
    item = factories.rfc(cast["dev"], site_a, release=factories.release(cast["dev"], "1.5.0", product="ERP"))
    page = client_for(cast["dev"]).get(reverse("releases:detail", args=[item.uuid])).content.decode()
    assert "runs ERP 1.4.0" in page and "ERP not installed" in page and "runs ERP 2.3.1" not in page
