"""Builders for releases and RFCs that go through the real service functions."""

from __future__ import annotations

import hashlib
import itertools

from django.core.files.uploadedfile import SimpleUploadedFile

from releases import services
from releases.models import Release
from workflow import services as wf

_counter = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def png(name: str = "screen.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PNG, content_type="image/png")


def log(name: str = "uat-run.log", text: str = "2026-11-20 10:01 PASS label printed\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def release(user, version: str = "1.0.1", product: str = "MES", **extra) -> Release:
    digest = hashlib.sha256(f"{product}{version}{next(_counter)}".encode()).hexdigest()
    return services.create_release(
        user,
        product=product,
        version=version,
        artifact_url=extra.pop("artifact_url", "https://artifacts.plant.test/mes.zip"),
        artifact_sha256=extra.pop("artifact_sha256", digest),
        **extra,
    )


def low_risk() -> dict[str, int]:
    """Every asked risk question answered "none": a low-risk change."""
    from releases import risk

    return {q.key: 0 for q in risk.questions() if not q.computed}


def rfc(user, site, version: str = "1.0.1", **fields):
    rel = fields.pop("release", None) or release(user, version)
    defaults = {
        "risk_answers": low_risk(),
        "title": "Raise label printer timeout",
        "description": "Printers on line 2 time out under load.",
        "release": rel,
        "rollback_plan": "Redeploy 1.0.0 and run undo.sql",
        "impacts": [{"site": site, "lines": ["Line 2"], "modules": ["Labelling"]}],
    }
    defaults.update(fields)
    return services.create_rfc(user, **defaults)


def promote(item, site, tiers=("DEV", "UAT")):
    """Record that the RFC's artifact succeeded in the site's lower tiers, as the engine would have,
    with the computed evidence a release manager then finds: UAT data freshly refreshed, and a passed
    idempotency check and rollback rehearsal in the tier that proves it (setup for tests that start
    later in the road; the engine's and the checks' own tests run them for real)."""
    from datetime import timedelta

    from core import clock
    from deployments import promotion
    from deployments.models import CheckKind, CheckRun, Deployment, DeploymentState
    from environments.models import Environment, RunState

    now = clock.now()
    proving = promotion.proving(site.pk)
    Environment.objects.filter(site=site, tier__in=["DEV", "UAT"]).update(data_refreshed_at=now)
    for kind in CheckKind.values:
        CheckRun.objects.create(
            kind=kind,
            rfc=item,
            release=item.release,
            artifact_sha256=item.release.artifact_sha256,
            environment=proving,
            state=RunState.PASSED,
            started_at=now,
            finished_at=now,
            summary="Passed on a copy of the proving tier (test setup).",
        )
    made = []
    for env in Environment.objects.filter(site=site, tier__in=tiers):
        made.append(
            Deployment.objects.create(
                rfc=item,
                environment=env,
                scheduled_start=now - timedelta(hours=2),
                scheduled_end=now - timedelta(hours=1),
                started_at=now - timedelta(hours=2),
                finished_at=now - timedelta(hours=1),
                duration_minutes=30,
                state=DeploymentState.SUCCEEDED,
                scheduled_by=item.author,
                artifact_sha256=item.release.artifact_sha256,
                outcome="Deployed and verified.",
            )
        )
    return made


def ready_rfc(author, tester, site, **fields):
    """A draft that passes every submission gate: proven in DEV and UAT, signed off (by a second key
    user too when the change is high risk)."""
    item = rfc(author, site, **fields)
    promote(item, site)
    wf.sign_off_uat(tester, item, site, "Printed 50 labels on UAT line 2, all fine.", [png()])
    if item.is_high_risk:
        wf.sign_off_uat(second_key_user(), item, site, "Ran the night-shift scenario on UAT.", [png()])
    return item


def second_key_user():
    from django.contrib.auth.models import User

    from core.roles import Role
    from tests.conftest import make_user

    return User.objects.filter(username="tester2").first() or make_user("tester2", Role.KEY_USER)


SIGNERS = {
    "it_manager": "itmanager",
    "operations_manager": "opsmanager",
    "cio": "cio",
    "plant_director": "plantdirector",
}


def sign_chain(people: dict, rfc):
    """Submit the RFC and sign every pending approval, each by the person of `people` holding its role
    (the `people` fixture), with the password, as a person would."""
    from approvals.models import Approval, ApprovalState
    from releases.states import RfcState
    from tests.conftest import PASSWORD

    wf.submit(people["dev"], rfc)
    while (approval := Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING).first()) is not None:
        wf.sign(people[SIGNERS[approval.role]], approval, "approve", PASSWORD)
    rfc.refresh_from_db()
    assert rfc.state == RfcState.APPROVED
    return rfc


def release_with_sql(user, version: str, sql: str = "", undo: str = "") -> Release:
    """A release with an uploaded artifact and the given SQL migration and undo script."""
    return services.create_release(
        user,
        product="MES",
        version=version,
        migration_sql=sql,
        undo_sql=undo,
        artifact=SimpleUploadedFile(f"mes-{version}.json", version.encode()),
    )


def booking(rfc, site, by, *, tier: str = "PROD", hours_ahead: float = 1, minutes: int = 30, **fields):
    """A deployment of `rfc` booked on `site`'s `tier` environment, `hours_ahead` from now (a row, as
    scheduling would leave it; state SCHEDULED unless `fields` say otherwise)."""
    from datetime import timedelta

    from core import clock
    from deployments.models import Deployment

    start = clock.now().replace(microsecond=0) + timedelta(hours=hours_ahead)
    return Deployment.objects.create(
        rfc=rfc,
        environment=site.environments.get(tier=tier),
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=minutes),
        duration_minutes=minutes,
        scheduled_by=by,
        **fields,
    )
