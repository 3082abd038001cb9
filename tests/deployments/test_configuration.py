"""Configuration promoted like code (issue 19 item 2, E8, X5): a release carries configuration bundles,
checksummed with it; a configuration-only release is an RFC like any other whose artifact checksum is its
bundles'; the engine writes the bundles to the environment's configuration folder on the real demo plant
and puts the old files back on a rollback; drift compares the configuration present in each tier key by key.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from deployments.models import DeploymentState
from environments import config as bundles
from environments.models import Environment
from environments.pipelines import pipeline_problems
from plant import evidence
from releases import gates
from releases import services as releases
from releases.models import Release
from tests import factories
from tests.conftest import api_client_for, client_for
from tests.deployments.test_engine import deploy

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
S = DeploymentState
MAPPING = {
    "integration-mappings": {
        "scrap.reason.01": "SCRAP-MAT",
        "scrap.reason.02": "SCRAP-SETUP",
        "scrap.reason.03": "SCRAP-QUALITY",
    }
}


def config_release(user, version="0.1.0", config=None, **extra):
    return releases.create_release(
        user, product="MES-config", version=version, config=config or MAPPING, **extra
    )


def folder(plant, site, tier):
    return plant / site.code / tier / "config"


def present(plant, site, tier, bundle="integration-mappings"):
    return json.loads((folder(plant, site, tier) / f"{bundle}.json").read_text())


def test_a_configuration_only_release_is_checksummed_like_an_artifact(cast):
    release = config_release(cast["dev"])
    assert release.config_only and release.config_sha256 == bundles.checksum(release.config)
    assert release.artifact_sha256 == release.config_sha256 and len(release.artifact_sha256) == 64
    # The same bundles in another order: the same checksum (canonical form).
    reordered = {"integration-mappings": dict(reversed(list(MAPPING["integration-mappings"].items())))}
    assert bundles.checksum(bundles.clean(reordered)) == release.config_sha256


def test_a_configuration_only_rfc_passes_the_artifact_gate(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a, release=config_release(cast["dev"]))
    gate = gates.artifact_checksum(rfc)
    assert gate.passed, gate.reason


def test_deploying_configuration_writes_it_and_drift_reads_it_key_by_key(cast, site_a, plant):
    """E8: after the deployment to DEV, the configuration present in DEV and PROD differs by the keys the
    release changed (and the label printer the demo's PROD has its own of)."""
    assert "scrap.reason.03" not in present(plant, site_a, "DEV")
    deployment = deploy(cast, site_a, "DEV", config_release(cast["dev"]))
    assert deployment.state == S.SUCCEEDED, deployment.outcome
    assert present(plant, site_a, "DEV") == MAPPING["integration-mappings"]
    apply, config = deployment.steps.get(name="apply"), deployment.steps.get(name="config")
    assert apply.output == "configuration-only release: nothing to install or migrate"
    assert "integration-mappings · scrap.reason.03: — → SCRAP-QUALITY" in config.output
    assert Environment.objects.get(site=site_a, tier="DEV").versions["MES-config"] == "0.1.0"
    dev = Environment.objects.get(site=site_a, tier="DEV")
    prod = Environment.objects.get(site=site_a, tier="PROD")
    evidence.record_fingerprint(prod)
    lines = evidence.drift(dev, prod)
    assert "integration-mappings · scrap.reason.03: DEV SCRAP-QUALITY, PROD —" in lines
    assert "erp-settings · label.printer: DEV ZT230, PROD ZT410" in lines
    page = client_for(cast["admin"]).get(f"/environments/{site_a.code}/DEV/").content.decode()
    assert "integration-mappings · scrap.reason.03: DEV SCRAP-QUALITY, PROD —" in page


def test_a_rollback_puts_the_previous_configuration_back(cast, site_a, plant, artifacts):
    """The release carries code (which fails its smoke test) and configuration: both go back."""
    before = present(plant, site_a, "DEV", "erp-settings")
    release = releases.create_release(
        cast["dev"],
        product="MES",
        version="2.4.2",
        artifact=SimpleUploadedFile("mes-2.4.2.json", artifacts["bad"].read_bytes()),
        config={"erp-settings": {**before, "currency": "USD"}, "new-bundle": {"a": "1"}},
    )
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    restored = deployment.steps.get(phase="rollback", name="restore_config")
    assert restored.state == "succeeded" and "erp-settings" in restored.output
    assert present(plant, site_a, "DEV", "erp-settings") == before
    assert not (folder(plant, site_a, "DEV") / "new-bundle.json").exists()


def test_a_release_with_configuration_needs_a_folder_for_it(cast, site_a, plant):
    dev = Environment.objects.get(site=site_a, tier="DEV")
    dev.pipeline = {k: v for k, v in dev.pipeline.items() if k != "config"}
    dev.save(update_fields=["pipeline"])
    deployment = deploy(cast, site_a, "DEV", config_release(cast["dev"]))
    assert deployment.state == S.ROLLED_BACK
    step = deployment.steps.get(name="config")
    assert 'add "config": {"adapter": "config_dir"' in step.output


def test_configuration_changed_in_the_database_is_not_deployed(cast, site_a, plant):
    """X5: the bundles are checked against the checksum recorded with the release before anything runs."""
    release = config_release(cast["dev"])
    Release.objects.filter(pk=release.pk).update(config={"integration-mappings": {"scrap.reason.01": "X"}})
    deployment = deploy(cast, site_a, "DEV", Release.objects.get(pk=release.pk))
    assert deployment.state == S.FAILED
    assert "configuration bundles' SHA-256" in deployment.steps.get(name="verify_checksum").output
    assert present(plant, site_a, "DEV")["scrap.reason.01"] == "SCRAP-MAT"


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"Bad Name": {"a": "1"}}, "a bundle's name"),
        ({"erp": {}}, "non-empty flat object"),
        ({"erp": {"a": ["x"]}}, "not a list or object"),
        ({"erp": {"a": "x" * 2001}}, "up to 2,000 characters"),
        ({"erp": {"bad key!": "1"}}, "keys such as"),
        ({"erp": {"a": "nul\x00"}}, "not a list or object"),
        (["erp"], "object of bundles"),
    ],
)
def test_bad_configuration_is_refused_with_nothing_saved(cast, config, problem):
    with pytest.raises(ValidationError) as refused:
        config_release(cast["dev"], config=config)
    assert problem in " ".join(refused.value.message_dict["config"])


def test_the_api_and_the_form_take_configuration(cast):
    response = api_client_for(cast["dev"]).post(
        "/api/v1/releases/",
        {"product": "MES-config", "version": "0.2.0", "config": MAPPING},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["config"] == MAPPING and body["artifact_sha256"] == body["config_sha256"]
    refused = api_client_for(cast["dev"]).post(
        "/api/v1/releases/", {"product": "MES-config", "version": "0.3.0", "config": {"x": 1}}, format="json"
    )
    assert refused.status_code == 400 and "config" in refused.json()["fields"]
    # The form: JSON files, named after their bundle.
    upload = SimpleUploadedFile("erp-settings.json", json.dumps({"currency": "EUR", "batch": 5}).encode())
    page = client_for(cast["dev"]).post(
        "/rfcs/releases/new/", {"product": "MES-config", "version": "0.4.0", "config_files": [upload]}
    )
    assert page.status_code == 302, page.content.decode()[:2000]
    stored = Release.objects.get(product="MES-config", version="0.4.0")
    assert stored.config == {"erp-settings": {"batch": "5", "currency": "EUR"}} and stored.config_only
    broken = SimpleUploadedFile("mappings.json", b"{not json")
    refused_page = client_for(cast["dev"]).post(
        "/rfcs/releases/new/", {"product": "MES-config", "version": "0.5.0", "config_files": [broken]}
    )
    assert (
        refused_page.status_code == 400
        and "mappings.json is not a JSON file." in refused_page.content.decode()
    )


def test_the_pipeline_says_where_configuration_lives():
    assert pipeline_problems({"config": {"adapter": "config_dir", "path": "/srv/mes/config"}}, "DEV") == []
    (problem,) = pipeline_problems({"config": {"adapter": "directory", "path": "/x"}}, "DEV")
    assert problem.startswith("config: configuration lives in a folder of JSON files")


def test_the_rfc_page_shows_each_setting_the_release_changes_against_prod(cast, site_a, plant):
    evidence.record_fingerprint(Environment.objects.get(site=site_a, tier="PROD"))
    rfc = factories.rfc(cast["dev"], site_a, release=config_release(cast["dev"]))
    html = client_for(cast["dev"]).get(f"/rfcs/{rfc.uuid}/").content.decode()
    assert "this release changes configuration only" in html and 'data-testid="config-changes"' in html
    assert "integration-mappings · scrap.reason.03</code></th><td" in html
    assert "scrap.reason.01" not in html  # unchanged settings are not listed
