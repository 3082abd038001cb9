"""Benchmark: pages near a bare view (issue 20 item 4), on PostgreSQL, through gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/pages_bench.py [--rfcs 20000] [--events 500000] [--runs 20] \
        [--check-constant] [--profile PAGE[,PAGE…]] [--queries PAGE[,PAGE…]]
        [--db NAME]

A throwaway set-up: VAR_DIR is a fresh temp dir, a database `cc_pages_bench` is (re)created next to
the one DATABASE_URL names, migrated, and dropped at the end.

1. Load RFCs in bulk (states from draft to closed over two sites; one in six in approval, waiting
   for the IT and the operations manager of its site; scheduled ones booked on PROD over two months)
   and audit events by COPY (unique seq; not a valid chain: no page here verifies it).
2. gunicorn (2 sync workers, DEBUG off, a free port) with bench/pages_settings.py: the product's
   pages, and beside them (bench/pages_urls.py, bench/pages_bare.py) a bare view of each page's
   rows, rendered with a minimal template and no base.html; every response says its query count.
3. Per page, signed in as its role: p50 and p95 of RUNS requests, the same for its bare view
   (interleaved, so both see the same machine), the ratio of the p50s and the queries; and the p50 of
   the bare rows rendered inside base.html (`?base=1`), the layout's own share.
   --check-constant also counts each page's queries at a tenth of the rows (2,000 RFCs by default)
   before loading the rest, and fails when a count differs.
   --profile PAGE prints cProfile's top 25 for one page, asked in-process: by own time, and by
   cumulative time among the project's functions.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import http.client
import io
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import benchdb  # noqa: E402
import harness  # noqa: E402

BENCH_DB = "cc_pages_bench"
BATCH = 2000
# One RFC in six waits for approval (as in tests/changecontrol/test_query_counts.py).
STATES = ["closed", "draft", "in_approval", "approved", "scheduled", "closed", "closed", "deployed", "in_approval",
          "closed", "rejected", "draft"]  # fmt: skip
ROLES = {  # username: role (held at every site, through the role's group)
    "dev": "developer",
    "keyuser": "key_user",
    "itmanager": "it_manager",
    "opsmanager": "operations_manager",
    "releasemgr": "release_manager",
    "auditor": "auditor",
}


# The RFC page beside its bare view before v0.42.6, which read four of the fourteen kinds of rows it
# shows: printed for comparison, not a target (its bare view is the one reading the same rows).
FOUR_KINDS = ", four kinds of rows"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rfcs", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--check-constant", action="store_true")
    parser.add_argument(
        "--profile", metavar="PAGE", help="a page's name as the table prints it (several: comma-separated)"
    )
    parser.add_argument(
        "--queries",
        metavar="PAGE",
        help="print each statement of a page (several: comma-separated), slowest first",
    )
    parser.add_argument("--db", default=BENCH_DB, help="the throwaway database's name")
    parser.add_argument("--only", help="measure only the pages whose name contains this")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the loaded database afterwards (to look into a page by hand)",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        parser.error("set DATABASE_URL to a PostgreSQL server (postgres://user@host:port/db)")
    tmp = Path(tempfile.mkdtemp(prefix="cc-pages-bench-"))
    admin_url = None
    try:
        os.environ["VAR_DIR"] = str(tmp / "var")
        os.environ["MEDIA_ROOT"] = str(tmp / "var" / "media")
        os.environ["AUDIT_HEADS_FILE"] = str(tmp / "var" / "audit-heads.jsonl")
        os.environ["DJANGO_SETTINGS_MODULE"] = "pages_settings"
        os.environ["DEBUG"] = "0"
        os.environ["LOG_LEVEL"] = "WARNING"
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
        admin_url, os.environ["DATABASE_URL"] = benchdb.create(os.environ["DATABASE_URL"], args.db)
        return _run(args)
    finally:
        with suppress(Exception):
            from django.db import connections

            connections.close_all()
        if admin_url and args.keep:
            print(f"\n(database {args.db} kept: DATABASE_URL={os.environ['DATABASE_URL']})")
        elif admin_url:
            benchdb.drop(admin_url, args.db)
            print(f"\n(database {args.db} dropped, {tmp} removed)")
        shutil.rmtree(tmp, ignore_errors=True)


# --- Loading ---------------------------------------------------------------------------------------
class World:
    def __init__(self):
        from django.contrib.auth.models import User

        from core.roles import Role
        from environments.models import TIER_DEFAULTS, Environment, Site, Tier
        from environments.roles_setup import ensure_role_groups
        from releases.models import Release

        groups = ensure_role_groups()
        self.users = {}
        for name, role in ROLES.items():
            user = User.objects.create_user(name, f"{name}@bench.test", "bench-password", first_name=name)
            user.groups.add(groups[Role(role)])
            self.users[name] = user
        self.other = User.objects.create_user("dev2", "dev2@bench.test", "x", first_name="Other")
        self.other.groups.add(groups[Role.DEVELOPER])
        self.sites = []
        self.prod = {}
        for code, zone in (("BER", "Europe/Berlin"), ("CHI", "America/Chicago")):
            site = Site.objects.create(code=code, name=f"Plant {code}", timezone=zone)
            for tier in (Tier.DEV, Tier.UAT, Tier.PROD):
                env = Environment.objects.create(site=site, tier=tier, **TIER_DEFAULTS[tier])
                if tier == Tier.PROD:
                    self.prod[site.pk] = env
            self.sites.append(site)
        self.release = Release.objects.create(
            product="MES", version="1.0.1", artifact_sha256="0" * 64, created_by=self.users["dev"]
        )
        self.rfcs = 0
        self.events = 0
        self.rng = random.Random(20)


def load(world: World, upto: int) -> None:
    """RFCs `world.rfcs`..`upto` with their impacts, approvals and deployments, in bulk."""
    from approvals.models import Approval, ApprovalRound, ApprovalStep
    from core import clock
    from core.roles import Role
    from deployments.models import Deployment
    from releases.models import Impact, Rfc

    rng = world.rng
    now = clock.now().replace(microsecond=0)
    authors = [world.users["dev"], world.other]
    while world.rfcs < upto:
        first = world.rfcs
        count = min(BATCH, upto - first)
        numbers = range(first, first + count)
        rfcs = Rfc.objects.bulk_create(
            [
                Rfc(
                    number=f"RFC-B-{n:06d}",
                    title=f"Bench change {n}",
                    description="Printers on line 2 time out under load.",
                    release=world.release,
                    change_class="minor",
                    rollback_plan="Redeploy the previous version",
                    author=authors[(n // len(STATES)) % 2],
                    state=STATES[n % len(STATES)],
                    emergency=n % 50 == 0,
                    submitted_at=now - timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60)),
                )
                for n in numbers
            ]
        )
        site_of = {r.pk: world.sites[(n + n // 24) % 2] for n, r in zip(numbers, rfcs, strict=True)}
        Impact.index_items(
            Impact.objects.bulk_create(
                [
                    Impact(rfc=r, site=site_of[r.pk], lines=[f"Line {n % 7}"])
                    for n, r in zip(numbers, rfcs, strict=True)
                ]
            )
        )
        waiting = [r for r in rfcs if r.state == "in_approval"]
        rounds = ApprovalRound.objects.bulk_create(
            [
                ApprovalRound(rfc=r, number=1, change_class="minor", content_hash="0" * 64, created_at=now)
                for r in waiting
            ]
        )
        steps = ApprovalStep.objects.bulk_create(
            [
                ApprovalStep(
                    round=rd,
                    order=1,
                    roles=[Role.IT_MANAGER.value, Role.OPERATIONS_MANAGER.value],
                    rule="all",
                    state="pending",
                    activated_at=now - timedelta(hours=rng.randrange(1, 500)),
                )
                for rd in rounds
            ]
        )
        Approval.objects.bulk_create(
            [
                Approval(
                    step=step,
                    rfc_id=step.round.rfc_id,
                    role=role,
                    site=site_of[step.round.rfc_id],
                    state="pending",
                )
                for step in steps
                for role in (Role.IT_MANAGER, Role.OPERATIONS_MANAGER)
            ]
        )
        deployments = []
        for r in rfcs:
            if r.state == "scheduled":
                start = now + timedelta(minutes=rng.randrange(60, 60 * 24 * 60))
                state = "scheduled"
            elif r.state in ("closed", "deployed"):
                start = now - timedelta(minutes=rng.randrange(60, 2 * 365 * 24 * 60))
                state = "succeeded"
            else:
                continue
            deployments.append(
                Deployment(
                    rfc=r,
                    environment=world.prod[site_of[r.pk].pk],
                    scheduled_start=start,
                    scheduled_end=start + timedelta(minutes=30),
                    duration_minutes=30,
                    scheduled_by=world.users["releasemgr"],
                    state=state,
                    started_at=start if state == "succeeded" else None,
                    finished_at=start + timedelta(minutes=20) if state == "succeeded" else None,
                )
            )
        Deployment.objects.bulk_create(deployments)
        world.rfcs += count
        print(f"   {world.rfcs:,} RFCs", end="\r", flush=True)
    print()


def load_events(world: World, upto: int) -> None:
    """Audit events `world.events`..`upto` by COPY: each names one of the loaded RFCs."""
    from django.db import connection

    from core import clock

    now = clock.now()
    columns = "seq, occurred_at, actor_id, actor_name, action, object_type, object_id, object_repr, site_code, " \
        "before, after, request_id, ip_address, reason, prev_hash, hash"  # fmt: skip
    from audit.models import AuditEvent

    # Pages asked in between (the audit trail records its readers) took some numbers already.
    first = max(world.events, AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0)
    upto = max(upto, first + 1)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy,
    ):
        for seq in range(first + 1, upto + 1):
            number = f"RFC-B-{seq % world.rfcs:06d}"
            digest = hashlib.blake2b(str(seq).encode(), digest_size=32).hexdigest()
            prev = hashlib.blake2b(f"p{seq}".encode(), digest_size=32).hexdigest()
            copy.write_row(
                (seq, now - timedelta(seconds=(upto - seq) * 60), None, "dev", "releases.rfc.updated",
                 "releases.rfc", number, number, ("BER", "CHI")[seq % 2], None, '{"state": "draft"}', "", None,
                 "", prev, digest)
            )  # fmt: skip
    from audit.models import ChainHead

    ChainHead.objects.update_or_create(id=1, defaults={"seq": upto, "hash": digest})
    with connection.cursor() as cursor:  # the next event written takes the number after the loaded ones
        cursor.execute("SELECT setval('audit_event_seq', %s)", [upto])
    world.events = upto
    print(f"   {upto:,} audit events")


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


# --- The pages -------------------------------------------------------------------------------------
def pages(world: World) -> list[tuple[str, str, str, str]]:
    """(name, user, page URL, bare URL)."""
    from releases.models import Rfc

    waiting = Rfc.objects.filter(state="in_approval", author=world.other).order_by("-created_at").first()
    deep = max(1, world.events // 2)
    return [
        *[(f"home ({name})", name, "/", "/_bare/home/") for name in ROLES],
        ("RFC list", "dev", "/rfcs/", "/_bare/rfcs/"),
        ("RFC page (developer)", "dev", f"/rfcs/{waiting.uuid}/", f"/_bare/rfcs/{waiting.uuid}/"),
        ("RFC page (approver)", "itmanager", f"/rfcs/{waiting.uuid}/", f"/_bare/rfcs/{waiting.uuid}/"),
        (
            f"RFC page (developer){FOUR_KINDS}",
            "dev",
            f"/rfcs/{waiting.uuid}/",
            f"/_bare/rfcs/{waiting.uuid}/four-kinds/",
        ),
        ("approval queue", "itmanager", "/approvals/", "/_bare/approvals/"),
        ("calendar month", "releasemgr", "/environments/calendar/?view=month", "/_bare/calendar/"),
        ("audit first page", "auditor", "/audit/", "/_bare/audit/"),
        ("audit deep page", "auditor", f"/audit/?before={deep}", f"/_bare/audit/?before={deep}"),
        ("API RFC list", "dev", "/api/v1/rfcs/", "/_bare/api/rfcs/"),
    ]


def sessions(world: World) -> dict[str, str]:
    """A signed-in session cookie per user (made in-process, as a sign-in makes it)."""
    from django.conf import settings
    from django.test import Client

    cookies = {}
    for name, user in world.users.items():
        client = Client()
        client.force_login(user)
        cookies[name] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return cookies


class Server:
    def __init__(self):
        self.port = harness.free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "changecontrol.wsgi:application", "--workers", "2",
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "120", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/healthz", "")
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)

    def get(self, url: str, cookie: str) -> tuple[float, int, int]:
        """(seconds, status, queries)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            begin = time.perf_counter()
            conn.request("GET", url, headers={"Cookie": cookie, "Accept": "text/html,application/json"})
            response = conn.getresponse()
            response.read()
            took = time.perf_counter() - begin
        finally:
            conn.close()
        return took, response.status, int(response.getheader("X-Queries") or -1)

    def close(self) -> None:
        harness.stop(self.process)


def count_queries(server: Server, cookies, table) -> dict[str, int]:
    found = {}
    for name, who, url, _bare in table:
        # Each of the two workers fills its own caches (content types) on its first requests: the
        # fewest of a few answers is the page's own count.
        counts = []
        for _ in range(4):
            _t, status, queries = server.get(url, cookies[who])
            if status != 200:
                raise RuntimeError(f"{name}: {url} answered {status}")
            counts.append(queries)
        found[name] = min(counts)
    return found


def measure(server: Server, cookies, table, runs: int) -> list[dict]:
    rows = []
    for name, who, url, bare in table:
        for _ in range(2):  # warm both
            server.get(url, cookies[who])
            server.get(bare, cookies[who])
        in_base = None if bare.startswith("/_bare/api/") else bare + ("&" if "?" in bare else "?") + "base=1"
        page_t, bare_t, base_t, counts, bare_q = [], [], [], [], 0
        for _ in range(runs):
            took, status, queries = server.get(url, cookies[who])
            counts.append(queries)
            if status != 200:
                raise RuntimeError(f"{name}: {url} answered {status}")
            page_t.append(took * 1000)
            took, status, bare_q = server.get(bare, cookies[who])
            if status != 200:
                raise RuntimeError(f"{name}: bare {bare} answered {status}")
            bare_t.append(took * 1000)
            if in_base:
                took, status, _q = server.get(in_base, cookies[who])
                base_t.append(took * 1000)
        queries = min(counts)
        row = {
            "page": name,
            "p50": harness.pct(page_t, 50),
            "p95": harness.pct(page_t, 95),
            "bare": harness.pct(bare_t, 50),
            "in_base": harness.pct(base_t, 50) if base_t else None,
            "queries": queries,
            "bare_queries": bare_q,
        }
        row["ratio"] = row["p50"] / row["bare"]
        rows.append(row)
        base = f"{row['in_base']:8.1f}" if row["in_base"] is not None else f"{'-':>8}"
        print(f"   {name:<42} {row['p50']:8.1f} {row['p95']:8.1f} {row['bare']:8.1f} {row['ratio']:6.1f}x "
              f"{queries:7d} {bare_q:4d} {base}", flush=True)  # fmt: skip
    return rows


def _signed_in(world: World, table, name: str):
    """(the page's URL, an in-process client signed in as its role) for the page named `name`."""
    from django.test import Client

    chosen = [row for row in table if row[0] == name]
    if not chosen:
        raise SystemExit(f"no page named {name!r}; the pages: {', '.join(row[0] for row in table)}")
    _name, who, url, _bare = chosen[0]
    client = Client()
    client.force_login(world.users[who])
    return url, client


def profile(world: World, table, name: str) -> None:
    url, client = _signed_in(world, table, name)
    for _ in range(2):
        assert client.get(url).status_code == 200
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        client.get(url)
    profiler.disable()
    for order, restriction, what in (
        ("tottime", (), "own time"),
        ("cumulative", (rf"^{ROOT}/(?!bench/|\.venv/)",), "cumulative time, the project's own functions"),
    ):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(*restriction, 25)
        print(f"\ncProfile of {name} ({url}, 5 requests in-process), top 25 by {what}:")
        print(out.getvalue().split("\n\n", 1)[-1].strip("\n"))


def statements(world: World, table, name: str) -> None:
    """Each statement one request of the page sends, with its time (the median of 5 requests)."""
    from django.db import connection

    url, client = _signed_in(world, table, name)
    client.get(url)
    runs = []
    for _ in range(5):
        seen = []

        def timed(execute, sql, params, many, context, seen=seen):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                seen.append(((time.perf_counter() - began) * 1000, sql))

        began = time.perf_counter()
        with connection.execute_wrapper(timed):
            client.get(url)
        runs.append(((time.perf_counter() - began) * 1000, seen))
    total, seen = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    print(f"\nStatements of {name} ({url}): {len(seen)}, {sum(t for t, _ in seen):.1f} of {total:.1f} ms")
    for took, sql in sorted(seen, key=lambda item: -item[0]):
        print(f"  {took:7.2f} ms  {' '.join(sql.split())[:400]}")


def _run(args) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    print("Pages benchmark")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; database: {version}")
    print(f"  rfcs={args.rfcs:,} events={args.events:,} runs={args.runs}")
    world = World()
    small = None
    if args.check_constant:
        few = max(100, args.rfcs // 10)
        print(f"\n1a. Load {few:,} RFCs and {args.events * few // args.rfcs:,} audit events")
        load(world, few)
        load_events(world, args.events * few // args.rfcs)
        vacuum()
        table = pages(world)
        server = Server()
        try:
            small = count_queries(server, sessions(world), table)
        finally:
            server.close()
    print(f"\n1. Load {args.rfcs:,} RFCs and {args.events:,} audit events")
    begin = time.perf_counter()
    load(world, args.rfcs)
    load_events(world, args.events)
    vacuum()
    print(f"   loaded in {time.perf_counter() - begin:.1f} s")
    table = pages(world)
    if args.only:
        table = [row for row in table if args.only in row[0]]
    if args.queries:
        for name in args.queries.split(","):
            statements(world, table, name.strip())
        if not args.profile:
            return 0
    if args.profile:
        for name in args.profile.split(","):
            profile(world, table, name.strip())
        return 0
    cookies = sessions(world)
    server = Server()
    try:
        print(
            f"\n2. Through gunicorn (2 workers), {args.runs} runs each; times in ms, ratio = p50 / bare p50"
        )
        print(
            "   bare: the same rows, minimal template; in base.html: the same rows inside the portal's layout"
        )
        print(
            f"   {'page':<42} {'p50':>8} {'p95':>8} {'bare p50':>8} {'ratio':>7} {'queries':>7} bare {'in base.html p50':>8}"
        )
        rows = measure(server, cookies, table, args.runs)
    finally:
        server.close()
    print(f"\n   load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    over = [row["page"] for row in rows if row["ratio"] > 2 and not row["page"].endswith(FOUR_KINDS)]
    print(f"   above 2x its bare view: {', '.join(over) or 'none'}")
    print(
        f"   ({FOUR_KINDS.strip(', ')}: the RFC page against a bare view reading the RFC, its approvals,"
        " bookings and audit events only; for comparison, not a target)"
    )
    if small is not None:
        grown = {
            r["page"]: (small[r["page"]], r["queries"]) for r in rows if small.get(r["page"]) != r["queries"]
        }
        print(f"\n3. Queries at {max(100, args.rfcs // 10):,} and {args.rfcs:,} RFCs: "
              + ("equal on every page" if not grown else f"DIFFER: {grown}"))  # fmt: skip
        if grown:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
