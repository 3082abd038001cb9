"""A v0.6.0 database moves to the layered packages with every row intact: Deployment, DeploymentStep
and CheckRun change app (releases → deployments) in the migration state only; their tables, rows,
content types and permissions stay the same rows (DESIGN "Layout"; Annex 11 §4.8 data integrity)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.migrating import migrate_to_latest

# The last migration of each app at v0.6.0.
V060 = [
    ("environments", "0005_computed_evidence"),
    ("releases", "0004_checks"),
    ("approvals", "0002_review_rounds"),
    ("audit", "0003_trail_indexes"),
    ("deployments", None),  # the package came after v0.6.0
]


def test_a_v060_database_migrates_with_every_row_intact(migrator):
    old = migrator(V060)
    with pytest.raises(LookupError):
        old.get_model("deployments", "Deployment")
    User = old.get_model("auth", "User")
    Site, Environment = old.get_model("environments", "Site"), old.get_model("environments", "Environment")
    Release, Rfc = old.get_model("releases", "Release"), old.get_model("releases", "Rfc")
    Deployment = old.get_model("releases", "Deployment")
    Step, CheckRun = old.get_model("releases", "DeploymentStep"), old.get_model("releases", "CheckRun")
    ContentType, Permission = (
        old.get_model("contenttypes", "ContentType"),
        old.get_model("auth", "Permission"),
    )

    user = User.objects.create(username="v060-user")
    site = Site.objects.create(code="OLD", name="Old plant", timezone="Europe/Berlin")
    prod = Environment.objects.create(site=site, tier="PROD", active_version="1.0.0")
    uat = Environment.objects.create(site=site, tier="UAT")
    release = Release.objects.create(
        product="MES", version="1.0.1", created_by=user, artifact_sha256="a" * 64
    )
    rfc = Rfc.objects.create(
        number="RFC-2026-0001",
        title="Old change",
        description="From v0.6.0",
        release=release,
        change_class="patch",
        rollback_plan="Restore",
        author=user,
        state="deployed",
    )
    start = timezone.now() - timedelta(days=3)
    deployment = Deployment.objects.create(
        uuid=uuid.uuid4(),
        rfc=rfc,
        environment=prod,
        scheduled_start=start,
        scheduled_end=start + timedelta(hours=1),
        duration_minutes=30,
        state="succeeded",
        scheduled_by=user,
        outcome="Deployed and verified.",
        attempts=1,
    )
    step = Step.objects.create(
        deployment=deployment,
        order=1,
        name="apply",
        state="succeeded",
        started_at=start,
        output="applied",
        result={"exit": 0},
    )
    check = CheckRun.objects.create(
        kind="rehearsal",
        rfc=rfc,
        release=release,
        artifact_sha256="a" * 64,
        environment=uat,
        state="passed",
        result={"ok": True},
        summary="rehearsed",
    )
    old_types = {}
    for model in ("deployment", "deploymentstep", "checkrun"):
        ct, _ = ContentType.objects.get_or_create(app_label="releases", model=model)
        Permission.objects.get_or_create(
            content_type=ct, codename=f"view_{model}", defaults={"name": f"v {model}"}
        )
        old_types[model] = ct.pk

    migrate_to_latest()

    from django.contrib.auth.models import Permission as NewPermission
    from django.contrib.contenttypes.models import ContentType as NewContentType

    from deployments.models import CheckRun as NewCheckRun
    from deployments.models import Deployment as NewDeployment
    from deployments.models import DeploymentStep as NewStep

    NewContentType.objects.clear_cache()
    moved = NewDeployment.objects.get(pk=deployment.pk)
    assert (
        moved.uuid,
        moved.state,
        moved.outcome,
        moved.attempts,
        moved.rfc.number,
        moved.environment_id,
    ) == (deployment.uuid, "succeeded", "Deployed and verified.", 1, "RFC-2026-0001", prod.pk)
    assert moved.scheduled_start == deployment.scheduled_start
    moved_step = NewStep.objects.get(pk=step.pk)
    assert (moved_step.deployment_id, moved_step.output, moved_step.result) == (
        deployment.pk,
        "applied",
        {"exit": 0},
    )
    moved_check = NewCheckRun.objects.get(pk=check.pk)
    assert (moved_check.rfc_id, moved_check.summary, moved_check.result) == (
        rfc.pk,
        "rehearsed",
        {"ok": True},
    )
    assert list(moved.rfc.deployments.values_list("pk", flat=True)) == [deployment.pk]
    for model, pk in old_types.items():
        ct = NewContentType.objects.get(pk=pk)
        assert (ct.app_label, ct.model) == (
            "deployments",
            model,
        )  # the same row, so grants keep pointing at it
        assert NewPermission.objects.filter(content_type_id=pk, codename=f"view_{model}").exists()
    assert not NewContentType.objects.filter(app_label="releases", model__in=list(old_types)).exists()
