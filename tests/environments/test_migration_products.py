"""environments 0007: each environment's one `active_version` becomes a ProductVersion row of the
product deployed there (else MES), and recorded fingerprints follow (E9, E8; Annex 11 §4.8)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from tests.migrating import migrate_to_latest

BEFORE = [("environments", "0006_promotion_and_rollback")]


def test_each_active_version_becomes_the_version_of_its_product(migrator):
    """E9: the product is the one whose release of that version was deployed there; without such a
    deployment, the product of the newest one deployed there; without any, MES."""
    old = migrator(BEFORE)
    User = old.get_model("auth", "User")
    Site, Environment = old.get_model("environments", "Site"), old.get_model("environments", "Environment")
    Release, Rfc = old.get_model("releases", "Release"), old.get_model("releases", "Rfc")
    Deployment = old.get_model("deployments", "Deployment")

    user = User.objects.create(username="m-user")
    site = Site.objects.create(code="MIG", name="Migrated plant", timezone="Europe/Berlin")
    prod = Environment.objects.create(
        site=site, tier="PROD", active_version="1.4.0", fingerprint={"version": "1.4.0", "adapters": []}
    )
    uat = Environment.objects.create(site=site, tier="UAT", active_version="2.0.0")
    dev = Environment.objects.create(site=site, tier="DEV", active_version="")
    other = Site.objects.create(code="MIH", name="Other plant", timezone="UTC")
    bare = Environment.objects.create(site=other, tier="PROD", active_version="2.3.1")

    def deployed(product: str, version: str, environment, state: str = "succeeded", days: int = 1):
        release = Release.objects.create(
            product=product, version=version, created_by=user, artifact_sha256=uuid.uuid4().hex * 2
        )
        rfc = Rfc.objects.create(
            number=f"RFC-2026-{Rfc.objects.count() + 1:04d}",
            title="t",
            description="d",
            release=release,
            change_class="minor",
            rollback_plan="r",
            author=user,
            state="deployed",
        )
        start = timezone.now() - timedelta(days=days)
        Deployment.objects.create(
            rfc=rfc,
            environment=environment,
            scheduled_start=start,
            scheduled_end=start + timedelta(hours=1),
            duration_minutes=30,
            state=state,
            scheduled_by=user,
            finished_at=start + timedelta(minutes=30),
        )

    deployed("ERP", "1.4.0", prod, days=3)  # what runs in PROD
    deployed("MES", "2.5.0", prod, days=1)  # newer, but rolled back: not what runs
    Deployment.objects.filter(environment=prod, rfc__release__product="MES").update(state="rolled_back")
    deployed("LABELS", "0.9.0", uat, days=1)  # no deployment of 2.0.0: the newest deployed product

    migrate_to_latest()

    from environments.models import Environment as NewEnvironment
    from environments.models import ProductVersion

    rows = {
        (row.environment_id, row.product, row.version)
        for row in ProductVersion.objects.filter(environment__site__code__in=["MIG", "MIH"])
    }
    assert rows == {(prod.pk, "ERP", "1.4.0"), (uat.pk, "LABELS", "2.0.0"), (bare.pk, "MES", "2.3.1")}
    assert NewEnvironment.objects.get(pk=dev.pk).versions == {}
    assert NewEnvironment.objects.get(pk=prod.pk).fingerprint == {
        "versions": {"ERP": "1.4.0"},
        "adapters": [],
    }
    assert NewEnvironment.objects.get(pk=prod.pk).active_version == "1.4.0"
