"""The live deployment page, promotion on the RFC page and the deployments API."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from deployments import engine, scheduling
from deployments.models import Deployment, DeploymentState
from environments.models import Environment, Tier
from releases import services
from tests import factories
from tests.conftest import api_client_for, client_for

pytestmark = pytest.mark.django_db
S = DeploymentState


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def rfc(cast, site_a):
    for env in Environment.objects.filter(site=site_a):
        env.pipeline = {"smoke_delay_seconds": 0} if env.tier == Tier.DEV else {"smoke_delay_seconds": 3600}
        env.save(update_fields=["pipeline"])
    release = services.create_release(
        cast["dev"],
        product="MES",
        version="1.0.1",
        artifact=SimpleUploadedFile("mes.json", b'{"product": "MES", "version": "1.0.1"}'),
    )
    return factories.rfc(cast["dev"], site_a, release=release)


def env(site, tier):
    return Environment.objects.get(site=site, tier=tier)


def page_url(d) -> str:
    return reverse("releases:deployment", args=[d.rfc.uuid, d.uuid])


def test_deploy_to_dev_from_the_rfc_page_and_watch_it(cast, site_a, rfc):
    client = client_for(cast["dev"])
    detail = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "Deploy to DEV now" in detail and "Deploy to PROD now" not in detail
    response = client.post(
        reverse("releases:deploy_now", args=[rfc.uuid]), {"environment": env(site_a, "DEV").pk}
    )
    deployment = Deployment.objects.get(rfc=rfc)
    assert response.status_code == 302 and response["Location"] == page_url(deployment)
    live = client.get(page_url(deployment)).content.decode()
    assert 'data-hx-trigger="every 2s"' in live and "Nothing has run yet" in live
    engine.run(deployment.pk, owner="w")
    done = client.get(page_url(deployment), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in done and "every 2s" not in done  # finished: the page stops polling
    assert 'data-step="forward:verify_checksum"' in done and "Succeeded" in done
    assert "1.0.1" in client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()


def test_prod_is_never_deployed_at_once(cast, site_a, rfc):
    response = client_for(cast["admin"]).post(
        reverse("releases:deploy_now", args=[rfc.uuid]), {"environment": env(site_a, "PROD").pk}, follow=True
    )
    assert "PROD is scheduled into its window" in response.content.decode()
    assert not Deployment.objects.exists()


def test_a_key_user_deploys_to_uat_but_not_to_dev(cast, site_a, rfc):
    client = client_for(cast["tester"])
    client.post(reverse("releases:deploy_now", args=[rfc.uuid]), {"environment": env(site_a, "DEV").pk})
    assert not Deployment.objects.exists()
    # X5: UAT takes only what succeeded in DEV; the page says why.
    refused = client.post(
        reverse("releases:deploy_now", args=[rfc.uuid]), {"environment": env(site_a, "UAT").pk}, follow=True
    )
    assert "has not succeeded in PLA DEV yet" in refused.content.decode()
    assert not Deployment.objects.exists()
    factories.promote(rfc, site_a, tiers=("DEV",))
    client.post(reverse("releases:deploy_now", args=[rfc.uuid]), {"environment": env(site_a, "UAT").pk})
    assert Deployment.objects.get(state=S.SCHEDULED).environment.tier == Tier.UAT


def test_manual_rollback_button_for_release_managers_only(cast, site_a, rfc):
    factories.promote(rfc, site_a, tiers=("DEV",))
    deployment = scheduling.deploy_now(cast["dev"], rfc, env(site_a, "UAT"))
    engine.run(deployment.pk, owner="w")  # waits an hour for its smoke test
    assert Deployment.objects.get(pk=deployment.pk).state == S.VERIFYING
    url = reverse("releases:deployment_rollback", args=[rfc.uuid, deployment.uuid])
    assert "Roll back now" not in client_for(cast["dev"]).get(page_url(deployment)).content.decode()
    assert client_for(cast["dev"]).post(url, {"reason": "x"}).status_code == 403
    manager = client_for(cast["releasemgr"])
    assert "Roll back now" in manager.get(page_url(deployment)).content.decode()
    assert manager.post(url, {"reason": ""}).status_code == 400
    assert manager.post(url, {"reason": "Labels misprint on line 1"}).status_code == 302
    assert engine.run(deployment.pk, owner="w") == S.ROLLED_BACK


def test_cancel_before_start(cast, site_a, rfc):
    deployment = scheduling.deploy_now(cast["dev"], rfc, env(site_a, "DEV"))
    response = client_for(cast["dev"]).post(
        reverse("releases:deployment_cancel", args=[rfc.uuid, deployment.uuid]), {"reason": "wrong branch"}
    )
    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.state == S.CANCELLED and engine.run(deployment.pk, owner="w") == S.CANCELLED
    assert AuditEvent.objects.filter(action="releases.deployment.cancelled").exists()


def test_deployments_api(cast, site_a, site_b, rfc):
    api = api_client_for(cast["dev"])
    created = api.post(
        "/api/v1/deployments/", {"rfc": str(rfc.uuid), "environment": env(site_a, "DEV").pk}, format="json"
    )
    assert created.status_code == 201 and created.json()["state"] == "scheduled"
    uuid = created.json()["uuid"]
    busy = api.post(
        "/api/v1/deployments/", {"rfc": str(rfc.uuid), "environment": env(site_a, "DEV").pk}, format="json"
    )
    assert busy.status_code == 409
    prod = api.post(
        "/api/v1/deployments/", {"rfc": str(rfc.uuid), "environment": env(site_a, "PROD").pk}, format="json"
    )
    assert prod.status_code == 400
    engine.run(Deployment.objects.get(uuid=uuid).pk, owner="w")
    steps = api.get(f"/api/v1/deployments/{uuid}/steps/").json()
    assert [s["name"] for s in steps][0] == "verify_checksum" and steps[-1]["name"] == "commit"
    listed = api.get("/api/v1/deployments/", {"rfc": rfc.number}).json()["results"]
    assert [d["uuid"] for d in listed] == [uuid] and listed[0]["state"] == "succeeded"
    assert (
        api.post(f"/api/v1/deployments/{uuid}/rollback/", {"reason": "x"}, format="json").status_code == 403
    )
    other = api_client_for(cast["itmanager_a"])
    rfc_b = factories.rfc(cast["dev"], site_b, version="1.0.2")
    dep_b = scheduling.deploy_now(cast["dev"], rfc_b, env(site_b, "DEV"))
    assert other.get(f"/api/v1/deployments/{dep_b.uuid}/").status_code == 404
    assert other.get(f"/api/v1/deployments/{dep_b.uuid}/steps/").status_code == 404


def test_the_api_refuses_a_tier_out_of_order_and_takes_it_in_order(cast, site_a, rfc):
    """X5, E1: POST /api/v1/deployments/ to UAT before DEV succeeded is a 422 naming the rule and DEV;
    once DEV succeeded with the same artifact, UAT takes it."""
    api = api_client_for(cast["releasemgr"])
    body = {"rfc": str(rfc.uuid), "environment": env(site_a, "UAT").pk}
    refused = api.post("/api/v1/deployments/", body, format="json")
    assert refused.status_code == 422 and refused.json()["rule"] == "Promotion order"
    assert "has not succeeded in PLA DEV yet" in refused.json()["detail"]
    assert not Deployment.objects.exists()
    factories.promote(rfc, site_a, tiers=("DEV",))
    taken = api.post("/api/v1/deployments/", body, format="json")
    assert taken.status_code == 201 and taken.json()["state"] == "scheduled"


def test_a_two_tier_site_signs_off_on_dev_and_books_prod_after_it(cast, rfc):
    """E1, seed 000: at a site with only DEV and PROD the key user signs off what succeeded in DEV,
    and the promotion gate names DEV as the tier PROD follows."""
    from releases import gates
    from releases.models import Impact, Rfc, UatSignoff
    from tests.conftest import make_site
    from workflow import services as wf

    two = make_site("TWO", tiers=("DEV", "PROD"))
    Impact.objects.filter(rfc=rfc).update(site=two)
    rfc = Rfc.objects.get(pk=rfc.pk)
    gate = next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Promotion order")
    assert not gate.passed and "has not succeeded in TWO DEV yet" in gate.reason
    factories.promote(rfc, two, tiers=("DEV",))
    wf.sign_off_uat(cast["tester"], rfc, two, "Printed 20 labels on DEV's copy.", [factories.png()])
    assert UatSignoff.objects.get(rfc=rfc).site == two
    gate = next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Promotion order")
    assert gate.passed and "TWO DEV" in gate.reason
