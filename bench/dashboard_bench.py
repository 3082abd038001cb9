"""Benchmark: the dashboard on 20,000 RFCs, on PostgreSQL (issue 17: answers in under 300 ms).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/dashboard_bench.py \
        [--rfcs 20000] [--sites 4] [--runs 20]

Everything runs against a throwaway set-up: VAR_DIR is a fresh temp dir and a database
`cc_dashboard_bench` is (re)created next to the one named by DATABASE_URL, migrated, and dropped at
the end. The developer's var/ and databases are never touched.

1. Load: N RFCs spread over the sites and the last two years, each submitted, approved by an IT
   manager and an operations manager, deployed to PROD (80% succeeded, 10% rolled back, 5% failed,
   5% missed); a gate refusal for one RFC in four. Rows are written in bulk; then VACUUM (ANALYZE).
2. `workflow.metrics.dashboard()` over the last 90 days, one site and all sites: median and p95 of
   RUNS runs after a warm-up, and the number of queries.
3. The whole page (`GET /dashboard/`, Django's test client, signed in as a release manager): the same.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchdb  # noqa: E402

BENCH_DB = "cc_dashboard_bench"
BATCH = 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rfcs", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        parser.error("set DATABASE_URL to a PostgreSQL server (postgres://user@host:port/db)")
    tmp = Path(tempfile.mkdtemp(prefix="cc-dashboard-bench-"))
    admin_url = None
    try:
        os.environ["VAR_DIR"] = str(tmp / "var")
        os.environ["MEDIA_ROOT"] = str(tmp / "var" / "media")
        os.environ["AUDIT_HEADS_FILE"] = str(tmp / "var" / "audit-heads.jsonl")
        os.environ["DJANGO_SETTINGS_MODULE"] = "changecontrol.settings"
        os.environ["DEBUG"] = "0"
        os.environ["LOG_LEVEL"] = "WARNING"
        admin_url, os.environ["DATABASE_URL"] = benchdb.create(os.environ["DATABASE_URL"], BENCH_DB)
        return _run(args)
    finally:
        with suppress(Exception):
            from django.db import connections

            connections.close_all()
        if admin_url:
            benchdb.drop(admin_url, BENCH_DB)
            print(f"\n(database {BENCH_DB} dropped, {tmp} removed)")
        shutil.rmtree(tmp, ignore_errors=True)


def load(n: int, site_count: int):
    from django.contrib.auth.models import User

    from approvals.models import Approval, ApprovalRound, ApprovalStep
    from core import clock
    from core.roles import Role
    from deployments.models import Deployment
    from deployments.states import DeploymentState as S
    from environments.models import TIER_DEFAULTS, Environment, Site, Tier
    from releases.models import GateRefusal, Impact, Release, Rfc

    rng = random.Random(17)
    now = clock.now().replace(microsecond=0)
    author = User.objects.create_user("bench-dev", "dev@bench.test", "x")
    sites = []
    for i in range(site_count):
        site = Site.objects.create(code=f"S{i:02d}", name=f"Plant {i}", timezone="Europe/Berlin")
        Environment.objects.create(site=site, tier=Tier.PROD, **TIER_DEFAULTS[Tier.PROD])
        sites.append(site)
    prod = {s.pk: s.environments.get(tier=Tier.PROD) for s in sites}
    release = Release.objects.create(
        product="MES", version="1.0.1", artifact_sha256="0" * 64, created_by=author
    )
    outcomes = [S.SUCCEEDED] * 16 + [S.ROLLED_BACK] * 2 + [S.FAILED, S.MISSED]
    for first in range(0, n, BATCH):
        count = min(BATCH, n - first)
        submitted = [now - timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60)) for _ in range(count)]
        rfcs = Rfc.objects.bulk_create(
            [
                Rfc(
                    number=f"B-{first + i:06d}",
                    title=f"Bench change {first + i}",
                    release=release,
                    change_class="minor",
                    author=author,
                    state="closed",
                    emergency=rng.random() < 0.05,
                    submitted_at=submitted[i],
                )
                for i in range(count)
            ]
        )
        site_of = [sites[(first + i) % len(sites)] for i in range(count)]
        Impact.index_items(
            Impact.objects.bulk_create([Impact(rfc=r, site=site_of[i]) for i, r in enumerate(rfcs)])
        )
        rounds = ApprovalRound.objects.bulk_create(
            [
                ApprovalRound(
                    rfc=r,
                    number=1,
                    change_class="minor",
                    content_hash="0" * 64,
                    state="closed",
                    created_at=submitted[i],
                )
                for i, r in enumerate(rfcs)
            ]
        )
        steps = ApprovalStep.objects.bulk_create(
            [
                ApprovalStep(
                    round=rd,
                    order=order,
                    roles=[role],
                    rule="all",
                    state="approved",
                    activated_at=submitted[i] + timedelta(hours=order),
                )
                for i, rd in enumerate(rounds)
                for order, role in ((1, Role.IT_MANAGER), (2, Role.OPERATIONS_MANAGER))
            ]
        )
        Approval.objects.bulk_create(
            [
                Approval(
                    step=step,
                    rfc_id=step.round.rfc_id,
                    role=step.roles[0],
                    site=site_of[k // 2],
                    state="approved",
                    decided_at=step.activated_at + timedelta(minutes=rng.randrange(5, 3000)),
                )
                for k, step in enumerate(steps)
            ]
        )
        deployments = []
        for i, r in enumerate(rfcs):
            state = rng.choice(outcomes)
            start = submitted[i] + timedelta(days=rng.randrange(1, 10))
            started = None if state == S.MISSED else start + timedelta(minutes=rng.choice((0, 1, 2, 12)))
            deployments.append(
                Deployment(
                    rfc=r,
                    environment=prod[site_of[i].pk],
                    scheduled_start=start,
                    scheduled_end=start + timedelta(hours=1),
                    duration_minutes=60,
                    scheduled_by=author,
                    state=state,
                    started_at=started,
                    rollback_started_at=started + timedelta(minutes=20) if state == S.ROLLED_BACK else None,
                    finished_at=(started or start) + timedelta(minutes=rng.randrange(5, 55)),
                )
            )
        Deployment.objects.bulk_create(deployments)
        GateRefusal.objects.bulk_create(
            [
                GateRefusal(
                    rfc=r,
                    stage="submit",
                    gate=rng.choice(("UAT sign-off", "Deployment window", "Approvals")),
                    occurred_at=submitted[i] - timedelta(hours=2),
                )
                for i, r in enumerate(rfcs)
                if i % 4 == 0
            ]
        )
        print(f"   {first + count:,} RFCs", end="\r", flush=True)
    print()
    return sites


def timed(label: str, func, runs: int) -> None:
    from django.db import connection

    func()
    seen = []  # counted by a wrapper: a request resets connection.queries
    with connection.execute_wrapper(lambda execute, sql, *rest: seen.append(sql) or execute(sql, *rest)):
        func()
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        func()
        samples.append((time.perf_counter() - begin) * 1000)
    samples.sort()
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    print(
        f"  {label:<46} median {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms   {len(seen)} queries"
    )


def _run(args) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.ALLOWED_HOSTS = ["*"]
    settings.MFA_REQUIRED_ROLES = []  # the benchmark's release manager signs in without a second step
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    print("Dashboard benchmark")
    print(f"  machine:  {os.cpu_count()} CPUs; database: {version}; rfcs={args.rfcs:,} sites={args.sites}")
    print(f"\n1. Load {args.rfcs:,} RFCs with approvals, PROD deployments and gate refusals")
    begin = time.perf_counter()
    sites = load(args.rfcs, args.sites)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    print(f"   loaded in {time.perf_counter() - begin:.1f} s")

    from django.test import Client

    from core.roles import Role
    from tests.conftest import make_user
    from workflow import metrics

    print("\n2. metrics.dashboard(), the last 90 days")
    one = metrics.period(None, None, sites[0].zone)
    one = metrics.Period(one.until - timedelta(days=89), one.until, one.zone)
    every = metrics.Period(one.since, one.until, metrics.ZONE_UTC)
    timed("one site", lambda: metrics.dashboard([sites[0]], one), args.runs)
    timed(f"all {len(sites)} sites", lambda: metrics.dashboard(sites, every), args.runs)
    year = metrics.Period(one.until - timedelta(days=364), one.until, metrics.ZONE_UTC)
    timed(f"all {len(sites)} sites, a year (by week)", lambda: metrics.dashboard(sites, year), args.runs)

    print("\n3. GET /dashboard/ (signed in as a release manager)")
    user = make_user("bench-rm", Role.RELEASE_MANAGER)
    client = Client()
    client.force_login(user)
    query = f"since={one.since:%Y-%m-%d}&until={one.until:%Y-%m-%d}"

    def get(url):
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    timed("one site", lambda: get(f"/dashboard/?site={sites[0].code}&{query}"), args.runs)
    timed(f"all {len(sites)} sites", lambda: get(f"/dashboard/?{query}"), args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
