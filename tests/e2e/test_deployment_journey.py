"""Journey: a release manager schedules the demo's good release on the always-open demo line
and watches it deploy; then the bad one, and watches it fail its smoke test and roll back by itself;
then one that passes the smoke test but breaks the ERP confirmations, caught by a business signal.
Real parts: the demo plant's HTTP server, a Celery worker and beat, the browser."""

from __future__ import annotations

import io
import shutil

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from core import clock
from demo_plant.layout import ensure_environment
from deployments.models import Deployment
from environments.models import Environment, Site
from releases.models import Rfc
from tests import factories
from tests.demo_plant_server import running_plant
from tests.e2e.conftest import demo_password, login, screenshot
from tests.workers import celery_beat, celery_worker

pytestmark = pytest.mark.browser
TIMEOUT = 90_000
# Dispatch every second; and these journeys are not about latency (tests/deployments/test_engine.py
# tests the performance rule with a release ten times slower): a loaded machine's smoke test may take
# 60 % longer after the change than before without the journey failing on it.
WORKER_ENV = {"DEPLOYMENT_DISPATCH_SECONDS": "1", "SMOKE_NOISE_MS": "1000"}


@pytest.fixture
def plant_portal(live_server, transactional_db, tmp_path):
    root = settings.VAR_DIR / "plant"
    shutil.rmtree(root, ignore_errors=True)  # a plant as the demo first builds it, whatever ran before
    ensure_environment(root, "OPEN", "PROD")
    with running_plant(root, produce_every=1) as base:  # the PROD line writes a cycle every second
        settings.DEMO_PLANT_URL = base
        call_command("demo", stdout=io.StringIO())
        prod = Environment.objects.get(site__code="OPEN", tier="PROD")
        prod.pipeline = {**prod.pipeline, "smoke_delay_seconds": 3}  # seconds, not the demo's 20
        prod.save(update_fields=["pipeline"])
        yield live_server.url.rstrip("/")


def schedule_and_watch(page, portal, title: str, expected: str, shot: str) -> Deployment:
    page.goto(f"{portal}/")
    page.get_by_test_id("home-schedule").get_by_role("link", name=Rfc.objects.get(title=title).number).click()
    page.get_by_role("link", name="Schedule PROD…").click()
    page.get_by_test_id("slot").first.click()
    expect(page.get_by_test_id("rfc-state")).to_have_text("Scheduled")
    deployment = Deployment.objects.get(rfc__title=title, environment__tier="PROD")
    # The first slot starts at the next whole minute; the test does not wait for it.
    Deployment.objects.filter(pk=deployment.pk).update(scheduled_start=clock.now())
    page.get_by_test_id("promotion").get_by_role("link", name="Scheduled").click()
    expect(page.get_by_test_id("deployment-state")).to_have_text(expected, timeout=TIMEOUT)
    screenshot(page, shot)
    deployment.refresh_from_db()
    return deployment


def test_watch_a_good_release_deploy_and_a_bad_one_roll_back(page, plant_portal, tmp_path):
    fast = WORKER_ENV
    with celery_worker("deployer", extra_env=fast) as worker, celery_beat(tmp_path, extra_env=fast):
        login(page, plant_portal, "releasemgr", demo_password())
        # The computed evidence, computed by the demo from real runs, on the RFC and the UAT page.
        good_rfc = Rfc.objects.get(title="Label layout v2 on the demo line")
        page.goto(f"{plant_portal}/rfcs/{good_rfc.uuid}/")
        evidence = page.get_by_test_id("computed-evidence")
        expect(evidence.get_by_test_id("check-idempotency")).to_have_text("Passed")
        expect(evidence.get_by_test_id("check-rehearsal")).to_have_text("Passed")
        expect(page.get_by_test_id("gates")).to_contain_text("UAT data fresh")
        evidence.scroll_into_view_if_needed()
        screenshot(page, "rfc-computed-evidence")
        page.goto(f"{plant_portal}/environments/OPEN/UAT/")
        expect(page.get_by_test_id("freshness")).to_contain_text("refreshed")
        expect(page.get_by_test_id("refresh")).to_contain_text("labels.text")
        screenshot(page, "environment-uat-evidence")
        try:
            good = schedule_and_watch(
                page, plant_portal, "Label layout v2 on the demo line", "Succeeded", "deployment-succeeded"
            )
            expect(page.get_by_test_id("deployment-outcome")).to_contain_text("Deployed and verified")
            bad = schedule_and_watch(
                page,
                plant_portal,
                "Label template rework on the demo line",
                "Rolled back",
                "deployment-rolled-back",
            )
            expect(page.get_by_test_id("deployment-outcome")).to_contain_text("smoke test failed")
            expect(page.locator('[data-step="rollback:verify_undo"]')).to_contain_text("Succeeded")
            # R3: rolled back by the undo script; the cycles the line wrote since the backup are still there.
            expect(page.get_by_test_id("deployment-rpo")).to_contain_text("No production data was discarded")
            page.get_by_test_id("deployment-rpo").scroll_into_view_if_needed()
            screenshot(page, "deployment-rolled-back-rpo")
            # Issue 19 item 3: the smoke test passes; the ERP confirmations fail; the signal rolls it back.
            unconfirmed = schedule_and_watch(
                page,
                plant_portal,
                "ERP confirmation rework on the demo line",
                "Rolled back",
                "deployment-signal-rolled-back",
            )
            expect(page.get_by_test_id("deployment-outcome")).to_contain_text(
                "Business signal breached: ERP confirmations failed"
            )
            expect(page.locator('[data-step="forward:smoke"]')).to_contain_text("Succeeded")
            expect(page.locator('[data-step="forward:signals"]')).to_contain_text("Failed")
            page.locator('[data-step="forward:signals"]').scroll_into_view_if_needed()
            screenshot(page, "deployment-signal-breached")
            page.goto(f"{plant_portal}/environments/OPEN/PROD/")
            expect(page.get_by_test_id("signal-rows")).to_contain_text("ERP confirmations failed")
            expect(page.get_by_test_id("signal-rows")).to_contain_text("Unconfirmed queue depth")
            page.get_by_test_id("signals").scroll_into_view_if_needed()
            screenshot(page, "environment-signals")
            # Issue 19 item 2: a configuration-only RFC shows each setting it changes against PROD.
            config_rfc = Rfc.objects.get(title="Scrap reason mapping for the ERP on the demo line")
            page.goto(f"{plant_portal}/rfcs/{config_rfc.uuid}/")
            expect(page.get_by_test_id("config-changes")).to_contain_text("scrap.reason.03")
            page.get_by_test_id("config-changes").scroll_into_view_if_needed()
            screenshot(page, "rfc-configuration-only")
            # Issue 19 item 5: 2.4.1 brought two flags; turning the unsafe one on breaks the ERP
            # confirmations, and the worker turns it off again — a rollback that restores nothing.
            page.goto(f"{plant_portal}/environments/OPEN/PROD/flags/")
            row = page.get_by_test_id("flag-erp_batch_confirmations")
            row.get_by_label("Why").fill("Pilot batch confirmations on the demo line.")
            row.get_by_role("button", name="Turn on").click()
            expect(page.get_by_test_id("flag-change").first).to_contain_text(
                "Turned off again", timeout=TIMEOUT
            )
            page.reload()
            expect(page.get_by_test_id("flag-change").first).to_contain_text("ERP confirmations failed")
            expect(
                page.get_by_test_id("flag-erp_batch_confirmations").get_by_test_id("flag-state")
            ).to_have_text("Off")
            screenshot(page, "environment-flags")
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(worker.log[-60:])) from None
    unconfirmed.refresh_from_db()
    assert unconfirmed.state == "rolled_back" and unconfirmed.rpo["kept"], unconfirmed.outcome
    bad.refresh_from_db()
    assert bad.rpo["kept"] and bad.rpo["rows_kept"]["cycles"] >= 1, bad.rpo
    assert good.state == "succeeded" and bad.state == "rolled_back"
    assert (
        Rfc.objects.get(pk=good.rfc_id).state == "deployed"
        and Rfc.objects.get(pk=bad.rfc_id).state == "rolled_back"
    )
    assert Environment.objects.get(site__code="OPEN", tier="PROD").active_version == "2.4.1"


def test_promote_dev_then_uat_then_prod_in_order(page, plant_portal, tmp_path):
    """X5, E1: a new release goes DEV → UAT → PROD on the demo line through the RFC page. UAT first is
    refused, naming DEV; each tier takes the artifact once the tier before it succeeded."""
    import json

    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from approvals.models import Approval, ApprovalState
    from changecontrol.demo import SIGNERS
    from core.roles import Role
    from deployments import checks
    from releases import services
    from workflow import services as wf

    for env in Environment.objects.filter(site__code="OPEN", tier__in=["DEV", "UAT"]):
        env.pipeline = {**env.pipeline, "smoke_delay_seconds": 1}
        env.save(update_fields=["pipeline"])
    users = {u.username: u for u in User.objects.all()}
    artifact = {"product": "MES", "version": "2.4.4", "label_delay_ms": 60, "broken": False}
    release = services.create_release(
        users["dev"],
        product="MES",
        version="2.4.4",
        notes="Batch number in bold.",
        artifact=SimpleUploadedFile("mes-2.4.4.json", json.dumps(artifact).encode()),
    )
    rfc = services.create_rfc(
        users["dev"],
        title="Bold batch number on the demo line",
        description="Operators read the batch number from two metres away.",
        release=release,
        rollback_plan="Restore the application snapshot; no database change.",
        impacts=[{"site": "OPEN", "lines": ["Line 1"], "modules": ["Labelling"]}],
        risk_answers=factories.low_risk(),
    )
    fast = WORKER_ENV
    with celery_worker("promoter", extra_env=fast) as worker, celery_beat(tmp_path, extra_env=fast):
        login(page, plant_portal, "releasemgr", demo_password())
        detail = f"{plant_portal}/rfcs/{rfc.uuid}/"
        page.goto(detail)
        page.get_by_role("button", name="Deploy to UAT now").click()
        expect(page.locator("main")).to_contain_text("has not succeeded in OPEN DEV yet")
        screenshot(page, "promotion-uat-before-dev-refused")
        assert not Deployment.objects.filter(rfc=rfc).exists()
        try:
            for tier in ("DEV", "UAT"):
                page.goto(detail)
                page.get_by_role("button", name=f"Deploy to {tier} now").click()
                expect(page.get_by_test_id("deployment-state")).to_have_text("Succeeded", timeout=TIMEOUT)
                screenshot(page, f"promotion-{tier.lower()}-succeeded")
            # The key user signs off what succeeded in UAT; the chain approves; the rehearsal runs.
            wf.sign_off_uat(
                users["tester"],
                rfc,
                Site.objects.get(code="OPEN"),
                "Printed 20 labels on UAT; the batch number is bold.",
                [SimpleUploadedFile("uat.log", b"20 labels PASS\n", content_type="text/plain")],
            )
            wf.submit(users["dev"], rfc)
            while (
                approval := Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING).first()
            ) is not None:
                wf.sign_verified(users[SIGNERS[Role(approval.role)]], approval, "approve", via="portal")
            site = Site.objects.get(code="OPEN")
            for kind in ("rehearsal", "replay", "parallel"):  # what the demo line's UAT declares
                assert checks.run_check(checks.request_check(None, rfc, kind, site).pk) == "passed", kind
            prod = schedule_and_watch(page, plant_portal, rfc.title, "Succeeded", "promotion-prod-succeeded")
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(worker.log[-60:])) from None
    page.goto(detail)
    expect(page.get_by_test_id("promotion")).to_contain_text("Succeeded")
    screenshot(page, "promotion-all-tiers")
    states = dict(Deployment.objects.filter(rfc=rfc).values_list("environment__tier", "state"))
    assert states == {"DEV": "succeeded", "UAT": "succeeded", "PROD": "succeeded"}
    assert prod.artifact_sha256 == release.artifact_sha256
    assert Environment.objects.get(site__code="OPEN", tier="PROD").versions["MES"] == "2.4.4"
