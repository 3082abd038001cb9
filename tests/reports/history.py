"""A hand-built plant history for the dashboard's tests: November 2026 at plant A (Berlin) and plant B
(Chicago), with known answers (tests/reports/test_metrics.py), and bulk RFCs for query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from approvals.models import Approval, ApprovalRound, ApprovalStep
from core.roles import Role
from deployments.models import Deployment
from deployments.states import DeploymentState as S
from environments.models import Tier
from releases.models import GateRefusal, Impact, Rfc
from tests import factories

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
_versions = iter(range(1, 10_000))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Newer than what the test sites run in PROD (a downgrade is refused); the demo runs 2.x.
VERSION_PREFIX = "1.0"


def change(people, site, submitted: str, *, emergency=False):
    item = factories.rfc(people["dev"], site, version=f"{VERSION_PREFIX}.{next(_versions)}")
    if emergency:
        Rfc.objects.filter(pk=item.pk).update(emergency=True, emergency_reason="Line 2 is down")
    Rfc.objects.filter(pk=item.pk).update(submitted_at=at(submitted), state="approved")
    item.refresh_from_db()
    return item


def deployed(item, site, state, booked: str, *, started=None, finished=None, rollback=None):
    start = at(booked)
    return Deployment.objects.create(
        rfc=item,
        environment=site.environments.get(tier=Tier.PROD),
        scheduled_start=start,
        scheduled_end=start + timedelta(hours=1),
        duration_minutes=60,
        scheduled_by=item.author,
        state=state,
        started_at=at(started) if started else None,
        finished_at=at(finished) if finished else None,
        rollback_started_at=at(rollback) if rollback else None,
    )


def decided(item, site, order, role, activated: str, decision: str):
    round_ = ApprovalRound.objects.create(
        rfc=item,
        number=ApprovalRound.objects.filter(rfc=item).count() + 1,
        change_class=item.change_class,
        content_hash="0" * 64,
        state="closed",
        created_at=at(activated),
    )
    step = ApprovalStep.objects.create(
        round=round_, order=order, roles=[role], rule="all", activated_at=at(activated)
    )
    return Approval.objects.create(
        step=step, rfc=item, role=role, site=site, state="approved", decided_at=at(decision)
    )


def build(people, site_a, site_b):
    """November 2026 at plant A (Berlin) and plant B (Chicago)."""
    ok = change(people, site_a, "2026-11-02T10:00")
    deployed(
        ok, site_a, S.SUCCEEDED, "2026-11-05T09:00", started="2026-11-05T09:01", finished="2026-11-05T09:30"
    )
    rolled = change(people, site_a, "2026-11-10T08:00")
    deployed(
        rolled,
        site_a,
        S.ROLLED_BACK,
        "2026-11-12T09:00",
        started="2026-11-12T09:10",  # ten minutes late
        rollback="2026-11-12T09:20",
        finished="2026-11-12T09:50",
    )
    failed = change(people, site_a, "2026-11-20T00:00", emergency=True)
    deployed(
        failed, site_a, S.FAILED, "2026-11-21T10:00", started="2026-11-21T10:00", finished="2026-11-21T10:05"
    )
    missed = change(people, site_a, "2026-11-22T10:00")
    deployed(missed, site_a, S.MISSED, "2026-11-25T10:00", finished="2026-11-25T11:00")
    # 23:30 UTC on 30 November is 1 December in Berlin: outside November at plant A, inside in UTC.
    late_night = change(people, site_a, "2026-11-29T23:30")
    deployed(
        late_night,
        site_a,
        S.SUCCEEDED,
        "2026-11-30T23:00",
        started="2026-11-30T23:00",
        finished="2026-11-30T23:30",
    )
    # 03:00 UTC on 1 December is 30 November in Chicago: inside November at plant B only.
    chicago = change(people, site_b, "2026-11-27T15:00")
    deployed(
        chicago,
        site_b,
        S.SUCCEEDED,
        "2026-12-01T02:30",
        started="2026-12-01T02:30",
        finished="2026-12-01T03:00",
    )
    now = at("2026-11-15T08:00")
    GateRefusal.objects.bulk_create(
        [
            GateRefusal(rfc=missed, stage="submit", gate="UAT sign-off", occurred_at=now),
            GateRefusal(
                rfc=missed, stage="submit", gate="UAT sign-off", occurred_at=now + timedelta(hours=1)
            ),
            GateRefusal(rfc=rolled, stage="schedule", gate="Deployment window", occurred_at=now),
            GateRefusal(rfc=chicago, stage="schedule", gate="Deployment window", occurred_at=now),
        ]
    )
    decided(ok, site_a, 1, Role.IT_MANAGER, "2026-11-02T10:00", "2026-11-02T12:00")  # 2 h
    decided(rolled, site_a, 1, Role.IT_MANAGER, "2026-11-10T08:00", "2026-11-10T14:00")  # 6 h
    decided(rolled, site_a, 2, Role.OPERATIONS_MANAGER, "2026-11-10T14:00", "2026-11-11T14:00")  # 24 h
    decided(chicago, site_b, 1, Role.IT_MANAGER, "2026-11-27T15:00", "2026-11-27T16:00")  # 1 h
    return {
        "ok": ok,
        "rolled": rolled,
        "failed": failed,
        "missed": missed,
        "late": late_night,
        "chicago": chicago,
    }


def many(people, site, n: int):
    """n RFCs at `site`, each submitted, approved, deployed (alternately succeeded and rolled back),
    refused once by a gate and approved by an IT manager — rows written in bulk."""
    base = change(people, site, "2026-11-01T00:00")
    rfcs = Rfc.objects.bulk_create(
        [
            Rfc(
                number=f"T-{site.code}-{i:05d}",
                title=f"Change {i}",
                description="bulk",
                release=base.release,
                change_class=base.change_class,
                author=base.author,
                rollback_plan="redeploy",
                state="deployed",
                submitted_at=at("2026-11-02T08:00") + timedelta(minutes=i),
            )
            for i in range(n)
        ]
    )
    Impact.objects.bulk_create([Impact(rfc=r, site=site) for r in rfcs])
    prod = site.environments.get(tier=Tier.PROD)
    start = at("2026-11-10T08:00")
    Deployment.objects.bulk_create(
        [
            Deployment(
                rfc=r,
                environment=prod,
                scheduled_start=start + timedelta(hours=i),
                scheduled_end=start + timedelta(hours=i, minutes=30),
                duration_minutes=30,
                scheduled_by=base.author,
                state=S.SUCCEEDED if i % 2 else S.ROLLED_BACK,
                started_at=start + timedelta(hours=i),
                rollback_started_at=start + timedelta(hours=i, minutes=10),
                finished_at=start + timedelta(hours=i, minutes=20),
            )
            for i, r in enumerate(rfcs)
        ]
    )
    GateRefusal.objects.bulk_create(
        [GateRefusal(rfc=r, stage="submit", gate="UAT sign-off", occurred_at=start) for r in rfcs]
    )
    for r in rfcs[:20]:
        decided(r, site, 1, Role.IT_MANAGER, "2026-11-03T08:00", "2026-11-03T09:00")
