"""A PROD pipeline is complete (X1, X2, R3, C5, E5): refused when saved without a snapshot, a backup or
a smoke test, and refused again by the "PROD pipeline complete" gate at scheduling and before the
worker touches PROD. One rule (environments/pipelines.py) for the model, the admin, the gate and
the adapters."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from core import clock
from core.errors import RuleViolation
from deployments import scheduling
from deployments.models import Deployment
from deployments.readiness import RULE
from environments.models import Environment, Tier
from environments.pipelines import pipeline_problems
from plant import adapters
from releases import gates
from releases.models import Rfc
from tests import factories
from tests.conftest import api_client_for, client_for, plant_pipeline

pytestmark = pytest.mark.django_db

VM = {
    "adapter": "vm",
    "vm": "mes-prod-01",
    "command": ["virsh", "snapshot-create-as", "{vm}", "{snapshot}"],
    "restore_command": ["virsh", "snapshot-revert", "{vm}", "{snapshot}"],
}
PUSH = {"adapter": "command", "command": ["push-recipe"], "writes_equipment": True}
MISSING = {
    "snapshot": 'takes a snapshot before the apply: add "snapshot"',
    "backup": 'backs up the database before the apply: add "backup"',
    "smoke": 'runs a smoke test after the apply: add "smoke"',
}


def complete() -> dict:
    return plant_pipeline("T", "PROD")


def prod(site) -> Environment:
    return Environment.objects.get(site=site, tier=Tier.PROD)


# --- The rule ------------------------------------------------------------------------------------
def test_a_complete_prod_pipeline_passes_and_dev_may_be_partial():
    """X1, X2: snapshot + backup + smoke test is a complete PROD pipeline (a VM snapshot counts as the
    snapshot); DEV and UAT may leave steps out, an empty one included."""
    pipeline = complete()
    assert pipeline_problems(pipeline, "PROD") == []
    vm_instead = {**{k: v for k, v in pipeline.items() if k != "snapshot"}, "vm_snapshot": VM}
    assert pipeline_problems(vm_instead, "PROD") == []
    assert pipeline_problems({}, "DEV") == [] == pipeline_problems({"smoke_delay_seconds": 0}, "UAT")


@pytest.mark.parametrize("step", ["snapshot", "backup", "smoke"])
def test_each_missing_step_is_named_with_what_to_add(step):
    """X1, X2: a PROD pipeline without one of its steps is refused, the step named with what to add."""
    pipeline = {k: v for k, v in complete().items() if k != step}
    [problem] = pipeline_problems(pipeline, "PROD")
    assert MISSING[step] in problem


def test_an_empty_prod_pipeline_lacks_every_step():
    """X1, X2: an empty PROD pipeline records nothing silently; it is refused, every step named."""
    problems = pipeline_problems({}, "PROD")
    assert len(problems) == 3 and all(any(text in p for p in problems) for text in MISSING.values())
    assert pipeline_problems(None, "PROD") == problems


def test_a_named_vm_needs_its_snapshot():
    """X1: an environment that runs on a named VM snapshots that VM in PROD."""
    [problem] = pipeline_problems(complete(), "PROD", vm_name="mes-prod-01")
    assert "'mes-prod-01'" in problem and '"vm_snapshot"' in problem
    [other] = pipeline_problems({**complete(), "vm_snapshot": {**VM, "vm": "erp-01"}}, "PROD", "mes-prod-01")
    assert "'erp-01'" in other and "runs on 'mes-prod-01'" in other
    assert pipeline_problems({**complete(), "vm_snapshot": VM}, "PROD", vm_name="mes-prod-01") == []


def test_an_equipment_push_without_its_revert_is_refused_in_prod():
    """R3, E5: the rollback pushes the previous recipe back, so a PROD equipment command names its
    revert_command. (DEV and UAT only simulate the push.)"""
    [problem] = pipeline_problems({**complete(), "equipment": [PUSH]}, "PROD")
    assert "equipment" in problem and '"revert_command"' in problem and "push-recipe" in problem
    reverted = {**PUSH, "revert_command": ["push-recipe", "--previous"]}
    assert pipeline_problems({**complete(), "equipment": [reverted]}, "PROD") == []
    assert pipeline_problems({"equipment": [PUSH]}, "UAT") == []


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"adapter": "ftp", "url": "x"}, "unknown adapter 'ftp'"),
        ({"adapter": "sqlite"}, "the sqlite adapter needs 'database'"),
        ({"adapter": "sqlite", "database": "/x", "dns": "typo"}, "does not know 'dns'"),
        ({"adapter": "command", "command": "true"}, "'command' is a list of program and arguments"),
        ({"adapter": "http", "url": "ftp://mes"}, "http:// or https://"),
    ],
)
def test_unknown_kinds_and_missing_keys_are_refused_by_the_same_rule_as_build(spec, says):
    """X1: what build() cannot build is refused when the pipeline is saved, in the same words."""
    problems = pipeline_problems({**complete(), "smoke": spec}, "PROD")
    assert len(problems) == 1 and says in problems[0]
    with pytest.raises(adapters.AdapterError, match=re.escape(says)):
        adapters.build(spec)


def test_an_adapter_in_the_wrong_step_and_a_command_backup_without_verification_are_refused():
    """X1: a SQL apply is no backup; a command backup names how it is verified and restored."""
    [wrong] = pipeline_problems(
        {**complete(), "backup": {"adapter": "sql", "database": "sqlite:///x"}}, "PROD"
    )
    assert "cannot be the backup step" in wrong
    problems = pipeline_problems(
        {**complete(), "backup": {"adapter": "command", "command": ["dump"]}}, "PROD"
    )
    assert any("'verify'" in p for p in problems) and any("'revert_command'" in p for p in problems)
    backup = {"adapter": "command", "command": ["dump"], "verify": ["check"], "revert_command": ["load"]}
    assert pipeline_problems({**complete(), "backup": backup}, "PROD") == []


# --- When saved ----------------------------------------------------------------------------------
def test_the_model_refuses_an_incomplete_prod_pipeline(site_a):
    """X1, X2: Environment.full_clean() refuses a PROD pipeline without a backup; DEV may lack it."""
    env = prod(site_a)
    env.full_clean()
    env.pipeline = {k: v for k, v in env.pipeline.items() if k != "backup"}
    with pytest.raises(ValidationError) as refused:
        env.full_clean()
    assert MISSING["backup"] in " ".join(refused.value.message_dict["pipeline"])
    env.vm_name = "mes-prod-01"
    with pytest.raises(ValidationError) as refused:
        env.full_clean()
    assert len(refused.value.message_dict["pipeline"]) == 2
    dev = Environment.objects.get(site=site_a, tier=Tier.DEV)
    dev.pipeline = {"smoke_delay_seconds": 0}
    dev.full_clean()


def _admin_data(env: Environment, pipeline: dict, **changes) -> dict:
    from tests.environments.test_calendar_admin import _inline

    products = [
        {"id": row.pk, "environment": env.pk, "product": row.product, "version": row.version}
        for row in env.products.order_by("product")
    ]
    data = {
        **_inline("products", products),
        **_inline("dependencies", []),
        "site": env.site_id,
        "tier": env.tier,
        "purpose": env.purpose,
        "data_policy": env.data_policy,
        "access_policy": env.access_policy,
        "sla": env.sla,
        "smoke_test_minutes": env.smoke_test_minutes,
        "rollback_budget_minutes": env.rollback_budget_minutes,
        "refresh_every_days": env.refresh_every_days,
        "vm_name": env.vm_name,
        "pipeline": json.dumps(pipeline),
        "data_refreshed_at_0": "",
        "data_refreshed_at_1": "",
        "audit_reason": "Line 2 moves to the new MES host",
        **({"equipment_writes": "on"} if env.equipment_writes else {}),
        **({"windows_enforced": "on"} if env.windows_enforced else {}),
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("step", ["snapshot", "backup", "smoke"])
def test_the_admin_refuses_an_incomplete_prod_pipeline_and_saves_nothing(cast, site_a, step):
    """X1, X2, C1: the admin form names the missing step; nothing is saved. A complete one saves."""
    env = prod(site_a)
    before = env.pipeline
    url = f"/admin/environments/environment/{env.pk}/change/"
    incomplete = {k: v for k, v in before.items() if k != step}
    response = client_for(cast["admin"]).post(url, _admin_data(env, incomplete))
    assert response.status_code == 200
    page = response.content.decode()
    assert "A PROD pipeline" in page and f"add &quot;{step}&quot;" in page
    assert prod(site_a).pipeline == before
    fine = {**before, "smoke_delay_seconds": 60}
    response = client_for(cast["admin"]).post(url, _admin_data(env, fine))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert prod(site_a).pipeline == fine


def test_the_admin_refuses_a_vm_without_its_snapshot(cast, site_a):
    """X1: naming the VM a PROD environment runs on asks for its snapshot in the same save."""
    env = prod(site_a)
    url = f"/admin/environments/environment/{env.pk}/change/"
    response = client_for(cast["admin"]).post(url, _admin_data(env, env.pipeline, vm_name="mes-prod-01"))
    assert response.status_code == 200 and "runs on the virtual machine" in response.content.decode()
    assert prod(site_a).vm_name == ""
    data = _admin_data(env, {**env.pipeline, "vm_snapshot": VM}, vm_name="mes-prod-01")
    assert client_for(cast["admin"]).post(url, data).status_code == 302


def test_the_api_does_not_write_pipelines_and_other_edits_leave_them_alone(cast, site_a):
    """X1: the environments API has no pipeline field (the admin is where pipelines are written); a PATCH
    naming one changes nothing of it, and editing another field of a PROD environment whose pipeline
    is incomplete is not blocked by it (the gate is)."""
    env = prod(site_a)
    Environment.objects.filter(pk=env.pk).update(pipeline={})
    client = api_client_for(cast["admin"])
    response = client.patch(
        f"/api/v1/environments/{env.pk}/",
        {"sla": "24/7", "pipeline": {"smoke": {"adapter": "command", "command": ["true"]}}, "reason": "SLA"},
        format="json",
    )
    assert response.status_code == 200, response.content
    env.refresh_from_db()
    assert env.sla == "24/7" and env.pipeline == {} and "pipeline" not in response.json()


# --- At scheduling, and before the worker touches PROD -------------------------------------------
@pytest.fixture
def rfc(cast, site_a):
    return factories.rfc(cast["dev"], site_a)


def test_the_gate_names_the_site_and_the_missing_steps(rfc, site_a):
    """C5, X1, X2: "PROD pipeline complete" is asked at scheduling and before deploying, not at
    submission; it fails naming the site and each missing step."""
    assert RULE in [g.name for g in gates.evaluate(rfc, "schedule")]
    assert RULE in [g.name for g in gates.evaluate(rfc, "deploy")]
    assert RULE not in [g.name for g in gates.evaluate(rfc, "submit")]
    [gate] = [g for g in gates.evaluate(rfc, "schedule") if g.name == RULE]
    assert gate.passed and "PLA" in gate.reason
    env = prod(site_a)
    Environment.objects.filter(pk=env.pk).update(pipeline={"snapshot": env.pipeline["snapshot"]})
    [gate] = [g for g in gates.failing(rfc, "deploy") if g.name == RULE]
    assert gate.reason.startswith("PLA PROD pipeline:")
    assert MISSING["backup"] in gate.reason and MISSING["smoke"] in gate.reason
    assert MISSING["snapshot"] not in gate.reason


def test_booking_prod_is_refused_by_the_gate(cast, rfc, site_a):
    """C5, X1: booking a PROD deployment asks the gate; an equipment push without its revert refuses it."""
    env = prod(site_a)
    Environment.objects.filter(pk=env.pk).update(pipeline={**env.pipeline, "equipment": [PUSH]})
    Rfc.objects.filter(pk=rfc.pk).update(state="approved")
    with pytest.raises(RuleViolation) as refused:
        scheduling.book(cast["releasemgr"], rfc, site_a, clock.now() + timedelta(days=7), 30)
    [failed] = [g for g in refused.value.failed if g["name"] == RULE]
    assert "PLA PROD pipeline" in failed["reason"] and "revert_command" in failed["reason"]
    assert f"{RULE} — PLA PROD pipeline" in str(refused.value)
    assert not Deployment.objects.filter(environment=env).exists()


def test_the_worker_refuses_prod_when_its_pipeline_lost_a_step(people, site_a, tmp_path, settings):
    """C5, X1: booked with a complete pipeline, then its backup removed: the worker asks the gate again
    and refuses before touching PROD, naming the gate, the site and the missing step; nothing runs."""
    import time_machine

    from demo_plant.artifacts import build as build_artifacts
    from deployments import engine
    from tests.demo_plant_server import site_plant
    from tests.deployments.test_engine import TUESDAY_9, app_version, artifact_release, scheduled_prod

    settings.MEDIA_ROOT, settings.VAR_DIR = tmp_path / "media", tmp_path / "var"
    artifacts = build_artifacts(tmp_path / "artifacts")
    with site_plant(tmp_path / "plant", site_a) as root:
        release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
        rfc, deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
        env = prod(site_a)
        Environment.objects.filter(pk=env.pk).update(
            pipeline={k: v for k, v in env.pipeline.items() if k != "backup"}
        )
        with time_machine.travel(TUESDAY_9 + timedelta(seconds=5), tick=False):
            assert engine.run(deployment.pk, owner="w") == "failed"
        deployment.refresh_from_db()
        assert deployment.outcome.startswith(f"Refused before touching PROD: {RULE} — PLA PROD pipeline: ")
        assert MISSING["backup"] in deployment.outcome
        assert not deployment.steps.exists() and app_version(root, site_a, "PROD") == "2.3.1"


def test_the_demo_pipeline_is_complete_in_prod(tmp_path):
    """X1, X2, R3: the demo plant's pipeline passes the PROD rule (its equipment push has its revert)."""
    from demo_plant.portal import pipeline

    built = pipeline(tmp_path, "BER", "PROD", "http://127.0.0.1:8100")
    assert pipeline_problems(built, "PROD") == []
    assert built["equipment"][0]["revert_command"][-1] == "--revert"
    assert built["apply"][1]["dry_run"][-1] == "--check" and built["apply"][1]["product"] == "MES"
    assert sys.executable == built["apply"][1]["dry_run"][0]
