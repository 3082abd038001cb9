"""Benchmark: the audit trail on millions of events, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/audit_bench.py \
        [--events 2000000] [--export-rows 1000000] [--runs 5] [--verify-runs 3] [--profile] \
        [--db NAME] [--keep] [--reuse] [--only pages,search,export,verify]

Everything runs against a throwaway set-up: VAR_DIR is a fresh temp dir and a database
`cc_audit_bench` (--db) is (re)created next to the one named by DATABASE_URL, migrated, and dropped at
the end (--keep keeps it, --reuse loads nothing when it already holds --events events). The
developer's var/ and databases are never touched.

1. Load: N hash-chained events (each prev_hash = the previous hash, hash = audit.services.compute_hash),
   generated in batches and written with COPY; then the chain head, VACUUM (ANALYZE).
2. Trail pages (audit.trail.page): median of RUNS runs after one warm-up, with the query plans
   (EXPLAIN (ANALYZE, BUFFERS) of the SQL Django sends): first page, filtered pages, deep pages.
3. Export (audit.trail.export_csv) of ~EXPORT_ROWS events selected by a start date: time, rows,
   bytes, time to first row, process RSS (ru_maxrss) and, in a second pass, tracemalloc's peak.
   Its ratio to a COPY (same query) TO STDOUT of the same rows, read and discarded, and as CSV.
4. audit.services.verify() over the N events (best of --verify-runs): events/s, the CPU of this
   process, and the ratio to `COPY (SELECT <the hashed columns> … ORDER BY seq) TO STDOUT` read and
   discarded; --profile prints cProfile's top entries (where the time goes).
5. The text search (pg_trgm GIN indexes, audit/search.py): median ms per term, with the plans.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import benchdb  # noqa: E402

from audit import chain  # noqa: E402  (no Django: the columns an event is hashed over)

BENCH_DB = "cc_audit_bench"
BATCH = 20_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COPY_COLUMNS = chain.COLUMNS


# --- Throwaway database (bench/benchdb.py) ---------------------------------------------------------
def create_bench_db(url: str, name: str = BENCH_DB, reuse: bool = False) -> tuple[str, str]:
    if reuse:
        admin, bench = benchdb.urls(url, name)
        if benchdb.exists(admin, name):
            return admin, bench
    return benchdb.create(url, name)


def drop_bench_db(admin: str, name: str = BENCH_DB) -> None:
    benchdb.drop(admin, name)


# --- Machine and process facts ----------------------------------------------------------------------
def meminfo_gib() -> str:
    with suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def proc_status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (Linux)."""
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux ≥ 4.0: clear_refs 5), so ru_maxrss after
    the export measures the export, not the load phase before it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --- Generating the trail ----------------------------------------------------------------------------
SITES = ("BER1", "HAM2", "MUC1", "LYS1", "CRK1", "BSL2", "SGP1", "NJ01", "PRG1", "WAW2")
# (action, object_type, weight, by a user?, before state, after state)
ACTIONS = (
    ("releases.rfc.created", "releases.rfc", 4, True, None, "draft"),
    ("releases.rfc.updated", "releases.rfc", 6, True, None, None),
    ("releases.rfc.submit", "releases.rfc", 4, True, "draft", "submitted"),
    ("releases.rfc.approve", "releases.rfc", 4, True, "in_review", "approved"),
    ("releases.rfc.reject", "releases.rfc", 1, True, "in_review", "rejected"),
    ("releases.rfc.uat_signed_off", "releases.rfc", 3, True, None, None),
    ("releases.evidence.added", "releases.evidence", 8, True, None, None),
    ("releases.check.passed", "releases.checkrun", 6, False, "running", "passed"),
    ("releases.check.failed", "releases.checkrun", 1, False, "running", "failed"),
    ("approvals.request.sent", "approvals.approval", 6, False, None, "pending"),
    ("approvals.request.reminded", "approvals.approval", 2, False, None, None),
    ("approvals.signature.approved", "approvals.approval", 8, True, "pending", "approved"),
    ("approvals.signature.rejected", "approvals.approval", 1, True, "pending", "rejected"),
    ("approvals.review.completed", "approvals.round", 3, False, "open", "completed"),
    ("releases.deployment.scheduled", "releases.deployment", 4, True, None, "scheduled"),
    ("releases.deployment.running", "releases.deployment", 4, False, "scheduled", "running"),
    ("releases.deployment.succeeded", "releases.deployment", 3, False, "running", "succeeded"),
    ("releases.deployment.failed", "releases.deployment", 1, False, "running", "failed"),
    ("releases.deployment.rollback_requested", "releases.deployment", 1, True, None, None),
    ("environments.refresh.succeeded", "environments.refreshrun", 1, False, "running", "succeeded"),
    ("audit.trail.read", "", 5, True, None, None),
    ("audit.trail.exported", "", 1, True, None, None),
    ("accounts.login.succeeded", "", 6, True, None, None),
)
ACTION_WEIGHTS = [a[2] for a in ACTIONS]
FIRST = (
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luca",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sven",
    "Tara",
    "Yusuf",
)
LAST = (
    "Meyer",
    "Schmidt",
    "Dubois",
    "Rossi",
    "Novak",
    "Kowalski",
    "Murphy",
    "Tan",
    "Weber",
    "Fischer",
    "Keller",
    "Bauer",
    "Lambert",
    "Moreau",
    "Horvat",
    "Nowak",
    "Byrne",
    "Lim",
    "Wagner",
    "Hofmann",
    "Richter",
    "Wolf",
    "Girard",
    "Costa",
    "Ward",
)
ACTORS = [f"{FIRST[i % len(FIRST)].lower()}.{LAST[i // len(FIRST)].lower()}" for i in range(500)]
TITLES = (
    "Update labelling template",
    "Patch MES to 4.2.1",
    "New weigh-scale driver",
    "Serialisation rule change",
    "Historian retention change",
    "Line clearance checklist",
    "Printer firmware",
    "Recipe parameter limits",
)
REASONS = (
    "Corrected a typo in the description.",
    "Per CAPA-2291.",
    "Requested by QA after the UAT review.",
    "Supplier release notes attached.",
    "Risk assessment updated after the deviation.",
    "Scope reduced to line 2 only.",
    "Window moved at the plant's request.",
    "Signed for release to production.",
    "Re-run after the network outage.",
)
RFCS = 5000
RARE_WORD = "calibration drift"  # in ~1 reason in 20,000: the worst case without a trigram index


def rfc_number(index: int, first_year: int) -> str:
    per_year = RFCS // 3 + 1
    return f"RFC-{first_year + index // per_year}-{index % per_year + 1:04d}"


def generate(count: int, span_days: int = 3 * 365, seed: int = 8):
    """Yield (COPY row tuple) for seq 1..count, chained as audit.services.record() would chain them."""
    from audit.models import GENESIS_HASH
    from audit.services import compute_hash

    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=span_days)
    start_us = (start - EPOCH) // timedelta(microseconds=1)
    step_us = max(1, (span_days * 86_400_000_000) // count)
    prev = GENESIS_HASH
    choices = rng.choices
    event = SimpleNamespace()
    for seq in range(1, count + 1):
        # Time and RFC both move forward with seq: each RFC's events cluster in its weeks, as in life.
        occurred = EPOCH + timedelta(microseconds=start_us + (seq - 1) * step_us + rng.randrange(step_us))
        action, object_type, _, by_user, state_before, state_after = choices(ACTIONS, ACTION_WEIGHTS)[0]
        rfc_index = min(RFCS - 1, max(0, int((seq - 1) * RFCS / count) + rng.randint(-25, 25)))
        number = rfc_number(rfc_index, start.year)
        if object_type:
            object_id, object_repr = number, f"{number} {TITLES[rfc_index % len(TITLES)]}"
            if object_type == "releases.evidence":
                object_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                object_repr = f"evidence for {number}"
        else:
            object_id = object_repr = ""
        site = SITES[(rfc_index * 7 + (rng.random() < 0.2) * rng.randrange(10)) % len(SITES)]
        if by_user:
            actor_index = rng.randrange(len(ACTORS))
            actor_id, actor_name = actor_index + 2, ACTORS[actor_index]
            request_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            ip_address = f"10.{rng.randrange(1, 40)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        else:
            actor_id, actor_name, request_id, ip_address = None, "system", "", None
        before = {"state": state_before} if state_before else None
        after = {"state": state_after} if state_after else None
        if action == "releases.rfc.updated":
            before, after = {"title": "Draft title"}, {"title": TITLES[rfc_index % len(TITLES)]}
        roll = rng.random()
        reason = (
            (RARE_WORD + " on the checkweigher, see deviation DEV-118.")
            if roll < 0.00005
            else (REASONS[rng.randrange(len(REASONS))] if roll < 0.15 else "")
        )
        event.seq, event.occurred_at, event.actor_id, event.actor_name = seq, occurred, actor_id, actor_name
        event.action, event.object_type, event.object_id, event.object_repr = (
            action,
            object_type,
            object_id,
            object_repr,
        )
        event.site_code = site if object_type else ""
        event.before, event.after, event.request_id, event.ip_address = before, after, request_id, ip_address
        event.reason, event.prev_hash = reason, prev
        digest = compute_hash(event)
        yield (
            seq,
            occurred,
            actor_id,
            actor_name,
            action,
            object_type,
            object_id,
            object_repr,
            event.site_code,
            before,
            after,
            request_id,
            ip_address,
            reason,
            prev,
            digest,
        )
        prev = digest


def load(count: int) -> dict:
    from django.db import connection
    from psycopg.types.json import Jsonb

    facts = {"generate_hash_s": 0.0, "copy_s": 0.0}
    rows = generate(count)
    sql = f"COPY audit_auditevent ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    last = None
    began = time.perf_counter()
    done = 0
    while done < count:
        t0 = time.perf_counter()
        batch = []
        for _ in range(min(BATCH, count - done)):
            row = next(rows)
            batch.append(
                row[:9]
                + (None if row[9] is None else Jsonb(row[9]), None if row[10] is None else Jsonb(row[10]))
                + row[11:]
            )
        t1 = time.perf_counter()
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in batch:
                copy.write_row(row)
        t2 = time.perf_counter()
        facts["generate_hash_s"] += t1 - t0
        facts["copy_s"] += t2 - t1
        done += len(batch)
        last = batch[-1]
        if done % 200_000 == 0 or done == count:
            print(f"    … {done:,} events loaded ({time.perf_counter() - began:.0f} s)", flush=True)
    facts["load_s"] = time.perf_counter() - began
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        # The chain head as record() would have left it (audit_chainhead has no append-only trigger).
        cursor.execute(
            "INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
            [last[0], last[-1]],
        )
        # The events' global seq comes from this sequence on PostgreSQL (audit lanes): past the load.
        cursor.execute("SELECT setval('audit_event_seq', %s + 1, false)", [last[0]])
        # What autovacuum would have done to a table that grew over three years: statistics, visibility map.
        cursor.execute("VACUUM (ANALYZE) audit_auditevent")
        cursor.execute("ANALYZE")
    facts["vacuum_analyze_s"] = time.perf_counter() - t0
    return facts


# --- Timing and plans --------------------------------------------------------------------------------
def explain(sql: str, params=None) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return [row[0] for row in cursor.fetchall()]


def print_plans(queries: list[dict], max_lines: int = 14) -> None:
    for number, query in enumerate(queries, 1):
        sql = query["sql"]
        print(f"    plan {number}/{len(queries)}: {sql[sql.find(' FROM ') :][:170].strip()}…")
        lines = explain(sql, query.get("params"))
        for line in lines[:max_lines]:
            print("      " + line)
        if len(lines) > max_lines:
            print(f"      … ({len(lines) - max_lines} more lines)")


def timed(label: str, func, runs: int, results: dict, plans: bool = True) -> None:
    """One warm-up (whose queries are explained), then the median of `runs` runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        outcome = func()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(samples)
    results[label] = median
    print(
        f"  {label:<58} median {median:9.2f} ms  (min {min(samples):.2f}, max {max(samples):.2f}; "
        f"{len(captured.captured_queries)} queries; {outcome})",
        flush=True,
    )
    if plans:
        print_plans(captured.captured_queries)


def page_outcome(filters, before=None):
    from audit import trail

    def run():
        rows, older, newer = trail.page(filters, before=before)
        return f"{len(rows)} rows, older={older}, newer={newer}"

    return run


# --- The benchmark -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument(
        "--export-rows",
        type=int,
        default=1_000_000,
        help="about this many events are exported (capped at half the trail)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per page (after one warm-up)")
    parser.add_argument("--verify-runs", type=int, default=3, help="verify() runs (the best is reported)")
    parser.add_argument(
        "--verify-workers",
        type=int,
        default=1,
        help="verify(workers=N): 2 checks the upper half in a second process",
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries for verify()")
    parser.add_argument("--db", default=BENCH_DB, help="the throwaway database's name")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database afterwards (for --reuse; drop it yourself)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a database kept by --keep when it already holds --events events (skips the load)",
    )
    parser.add_argument(
        "--only",
        default="pages,export,verify,search",
        help="comma-separated parts to run: pages, export, verify, search (the load always runs)",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        parser.error("set DATABASE_URL to a PostgreSQL server (postgres://user@host:port/db)")

    tmp = Path(tempfile.mkdtemp(prefix="cc-audit-bench-"))
    admin_url = None
    try:
        os.environ["VAR_DIR"] = str(tmp / "var")
        os.environ["MEDIA_ROOT"] = str(tmp / "var" / "media")
        os.environ["STATIC_ROOT"] = str(tmp / "var" / "staticfiles")
        os.environ["AUDIT_HEADS_FILE"] = str(tmp / "var" / "audit-heads.jsonl")
        os.environ["DJANGO_SETTINGS_MODULE"] = "changecontrol.settings"
        os.environ["DEBUG"] = "0"  # connection.queries must not grow over millions of rows
        os.environ["LOG_LEVEL"] = "WARNING"
        admin_url, os.environ["DATABASE_URL"] = create_bench_db(
            os.environ["DATABASE_URL"], args.db, args.reuse
        )
        return _run(args)
    finally:
        with suppress(Exception):  # django may never have been set up
            from django.db import connections

            connections.close_all()
        if admin_url and not args.keep:
            drop_bench_db(admin_url, args.db)
            print(f"\n(database {args.db} dropped, {tmp} removed)")
        elif admin_url:
            print(f"\n(database {args.db} kept, {tmp} removed)")
        shutil.rmtree(tmp, ignore_errors=True)


def header(args) -> None:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute(
            "SELECT current_setting('shared_buffers'), current_setting('work_mem'), "
            "current_setting('effective_cache_size')"
        )
        shared_buffers, work_mem, cache = cursor.fetchone()
    print("Audit trail benchmark")
    print(
        f"  machine:  {os.cpu_count()} CPUs ({cpu_model()}), RAM {meminfo_gib()}, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"  database: {version} ({connection.settings_dict['NAME']}); shared_buffers={shared_buffers} "
        f"work_mem={work_mem} effective_cache_size={cache}"
    )
    print(
        f"  settings: events={args.events:,} export≈{args.export_rows:,} runs={args.runs} DEBUG={settings.DEBUG}"
    )


def _run(args) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    assert not settings.DEBUG, "DEBUG must be off: connection.queries would hold every query"
    call_command("migrate", verbosity=0, interactive=False)
    header(args)
    n = args.events

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        present = cursor.fetchone()[0]
    facts = None
    if args.reuse and present == n:
        print(f"\n1. Load: reusing {args.db} with its {n:,} events")
    else:
        if present:
            parser_error = f"{args.db} holds {present:,} events, not {n:,}: drop it or leave out --reuse"
            raise SystemExit(parser_error)
        print(f"\n1. Load {n:,} chained events (batches of {BATCH:,}, COPY, all indexes in place)")
        facts = load(n)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size('audit_auditevent'), pg_indexes_size('audit_auditevent'), "
            "count(*) FROM pg_indexes WHERE tablename = 'audit_auditevent'"
        )
        table_bytes, index_bytes, index_count = cursor.fetchone()
    if facts:
        print(
            f"  load: {facts['load_s']:.1f} s ({n / facts['load_s']:,.0f} events/s) = generate+hash "
            f"{facts['generate_hash_s']:.1f} s + COPY {facts['copy_s']:.1f} s; VACUUM (ANALYZE) "
            f"{facts['vacuum_analyze_s']:.1f} s"
        )
    print(f"  size: table {table_bytes / 2**20:,.0f} MB, {index_count} indexes {index_bytes / 2**20:,.0f} MB")
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if not parts:
        return 0

    results: dict[str, float] = {}
    export = verification = search = None
    if "pages" in parts:
        page_benchmarks(args, n, results)
    if "search" in parts:
        search = search_benchmark(args, results)
    if "export" in parts:
        export = export_benchmark(args, n)
    if "verify" in parts:
        verification = verify_benchmark(args)

    print("\nSummary")
    if facts:
        print(
            f"  events {n:,}; load {facts['load_s']:.1f} s (+ VACUUM ANALYZE {facts['vacuum_analyze_s']:.1f} s)"
        )
    else:
        print(f"  events {n:,} (reused)")
    for label, value in results.items():
        print(f"  {label:<58} {value:9.2f} ms")
    if search:
        print(
            f"  text search (pg_trgm indexes {'in place' if search['indexed'] else 'MISSING'}): worst median "
            f"{search['worst_ms']:.1f} ms (target < 50 ms: {'met' if search['worst_ms'] < 50 else 'NOT met'})"
        )
    if export:
        print(
            f"  export CSV: {export['rows']:,} rows, {export['bytes'] / 2**20:,.1f} MB in {export['seconds']:.2f} s "
            f"= {export['rows'] / export['seconds']:,.0f} events/s (target ≥ 100,000: "
            f"{'met' if export['rows'] / export['seconds'] >= 100_000 else 'NOT met'}; CPU of this process "
            f"{export['cpu_s']:.2f} s = {export['rows'] / export['cpu_s']:,.0f} events per CPU-second); "
            f"{export['ratio_copy']:.2f}× a COPY of the same rows ({export['copy_s']:.2f} s) and "
            f"{export['ratio_copy_csv']:.2f}× a COPY … CSV ({export['copy_csv_s']:.2f} s); first chunk after "
            f"{export['first_row_s']:.2f} s; peak Python allocations {export['tracemalloc_peak_mb']:.1f} MB; "
            f"max RSS {export['rss_before_mb']:.0f} → {export['rss_after_mb']:.0f} MB"
        )
    if verification:
        print(
            f"  verify: {verification['count']:,} events in {verification['seconds']:.2f} s = "
            f"{verification['rate']:,.0f} events/s (target ≥ 200,000: "
            f"{'met' if verification['rate'] >= 200_000 else 'NOT met'}; CPU {verification['cpu_s']:.2f} s in this "
            f"process = {verification['count'] / verification['cpu_s']:,.0f} events per CPU-second); {verification['ratio_copy']:.2f}× a COPY of the hashed columns read and discarded "
            f"({verification['copy_s']:.2f} s = {verification['count'] / verification['copy_s']:,.0f} rows/s); "
            f"max RSS {verification['rss_before_mb']:.0f} → {verification['rss_after_mb']:.0f} MB; "
            f"ok={verification['ok']}"
        )
    return 0 if verification is None or verification["ok"] else 1


def page_benchmarks(args, n: int, results: dict) -> None:
    from audit.models import AuditEvent
    from audit.trail import Filters

    print(f"\n2. Trail pages (audit.trail.page, 50 rows; median of {args.runs} after one warm-up)")
    rfc = (
        AuditEvent.objects.filter(seq__gte=n // 2, object_type="releases.rfc")
        .order_by("seq")
        .values_list("object_id", flat=True)
        .first()
    )  # an RFC from the middle of the trail
    rfc_events = AuditEvent.objects.filter(object_id=rfc).count()
    site = SITES[3]
    timed("first page (no filter)", page_outcome(Filters()), args.runs, results)
    timed(f"object = {rfc} ({rfc_events} events)", page_outcome(Filters(object=rfc)), args.runs, results)
    timed(
        f"site = {site} + action ^releases.deployment",
        page_outcome(Filters(site=site, action="releases.deployment")),
        args.runs,
        results,
    )
    timed(f"deep page: before = {n // 2:,}", page_outcome(Filters(), before=n // 2), args.runs, results)
    timed("deep page: before = 100", page_outcome(Filters(), before=100), args.runs, results)
    timed(
        f"deep filtered: object = {rfc}, before its 10th",
        page_outcome(
            Filters(object=rfc),
            before=AuditEvent.objects.filter(object_id=rfc)
            .order_by("seq")
            .values_list("seq", flat=True)[min(9, max(0, rfc_events - 1))],
        ),
        args.runs,
        results,
    )

    print("\n   More filters of the page (not asked for, to find slow spots)")
    actor = ACTORS[123]
    timed(f"actor = {actor}", page_outcome(Filters(actor=actor)), args.runs, results)
    timed(
        "action ^approvals.signature.rejected",
        page_outcome(Filters(action="approvals.signature.rejected")),
        args.runs,
        results,
    )
    first_day = AuditEvent.objects.order_by("seq").values_list("occurred_at", flat=True).first().date()
    end = (first_day + timedelta(days=30)).isoformat()
    timed(f"end = {end} (the trail's first month)", page_outcome(Filters(end=end)), args.runs, results)
    start = (first_day + timedelta(days=400)).isoformat()
    end2 = (first_day + timedelta(days=407)).isoformat()
    timed(
        f"start..end = {start}..{end2} (one week, a year in)",
        page_outcome(Filters(start=start, end=end2)),
        args.runs,
        results,
    )


def copy_seconds(sql: str, params=None, options: str = "") -> tuple[float, int]:
    """COPY (sql) TO STDOUT, every block read and discarded: the floor for streaming these rows out."""
    from django.db import connection
    from psycopg import ClientCursor

    connection.ensure_connection()
    query = ClientCursor(connection.connection).mogrify(sql, params) if params else sql
    size = 0
    with connection.cursor() as cursor:
        t0 = time.perf_counter()
        with cursor.cursor.copy(f"COPY ({query}) TO STDOUT{options}") as copy:
            for block in copy:
                size += len(block)
        return time.perf_counter() - t0, size


def export_benchmark(args, n: int) -> dict:
    from audit import trail
    from audit.models import AuditEvent
    from audit.trail import Filters

    target = min(args.export_rows, n // 2)
    boundary = AuditEvent.objects.get(seq=n - target + 1).occurred_at
    start = (boundary + timedelta(days=1)).date().isoformat()  # from midnight after: ≤ target rows
    filters = Filters(start=start)
    matching = filters.apply(AuditEvent.objects.all()).count()
    print(f"\n3. Export CSV (audit.trail.export_csv), Filters(start={start!r}): {matching:,} events match")
    query = filters.apply(AuditEvent.objects.order_by("seq")).values_list(*trail.COLUMNS)
    sql, params = query.query.sql_with_params()
    print_plans([{"sql": sql, "params": params}], max_lines=20)
    print(
        "    (the export runs it through a server-side cursor as text tuples, batches of 5,000 rows, one "
        "response chunk per batch)"
    )

    def stream() -> tuple[int, float]:
        size = 0
        first = 0.0
        t0 = time.perf_counter()
        for number, chunk in enumerate(trail.export_csv(filters)):
            if number == 1:
                first = time.perf_counter() - t0
            size += len(chunk.encode())
        return size, first

    copy_s, copy_bytes = copy_seconds(sql, params)
    copy_csv_s, _ = copy_seconds(sql, params, " (FORMAT csv, HEADER)")
    print(
        f"  COPY of the same rows read and discarded: {copy_s:.2f} s ({copy_bytes / 2**20:,.1f} MB); "
        f"as CSV {copy_csv_s:.2f} s"
    )
    reset = reset_peak_rss()
    rss_before, before = proc_status_mb("VmRSS"), maxrss_mb()
    cpu0, t0 = time.process_time(), time.perf_counter()
    size, first = stream()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss_after, after = proc_status_mb("VmRSS"), maxrss_mb()
    rows = matching
    print(
        f"  pass 1 (timed): {rows:,} rows, {size:,} bytes ({size / 2**20:,.1f} MB) in {seconds:.2f} s "
        f"= {rows / seconds:,.0f} rows/s, {size / 2**20 / seconds:.1f} MB/s; first chunk after {first:.2f} s; "
        f"{seconds / copy_s:.2f}× the COPY; CPU of this process {cpu:.2f} s = {rows / cpu:,.0f} rows per CPU-second"
    )
    print(
        f"    ru_maxrss {before:.1f} → {after:.1f} MB (peak reset before the export: {'yes' if reset else 'no'}); "
        f"VmRSS {rss_before:.1f} → {rss_after:.1f} MB"
    )
    tracemalloc.start()
    t0 = time.perf_counter()
    stream()
    traced_seconds = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  pass 2 (tracemalloc on): {traced_seconds:.1f} s; peak Python allocations "
        f"{peak / 2**20:.2f} MB (left allocated {current / 2**20:.2f} MB)"
    )
    return {
        "rows": rows,
        "bytes": size,
        "seconds": seconds,
        "cpu_s": cpu,
        "first_row_s": first,
        "copy_s": copy_s,
        "copy_csv_s": copy_csv_s,
        "ratio_copy": seconds / copy_s,
        "ratio_copy_csv": seconds / copy_csv_s,
        "tracemalloc_peak_mb": peak / 2**20,
        "rss_before_mb": before,
        "rss_after_mb": after,
    }


def verify_benchmark(args) -> dict:
    from audit import chain
    from audit.services import verify

    print("\n4. audit.services.verify() over the whole trail")
    columns = ", ".join(chain.COLUMNS)
    copy_s, copy_bytes = copy_seconds(f"SELECT {columns} FROM audit_auditevent ORDER BY seq")  # noqa: S608
    print(
        f"  COPY (SELECT <the {len(chain.COLUMNS)} hashed columns + hash> … ORDER BY seq) TO STDOUT, read and "
        f"discarded: {copy_s:.2f} s ({copy_bytes / 2**20:,.0f} MB)"
    )
    samples = []
    reset_peak_rss()
    rss_before = maxrss_mb()
    for _ in range(max(1, args.verify_runs)):
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = verify(workers=args.verify_workers, parallel_from=0)
        samples.append((time.perf_counter() - t0, time.process_time() - cpu0))
    rss_after = maxrss_mb()
    seconds, cpu = min(samples)
    rate = result.count / seconds
    print(
        f"  verify (workers={args.verify_workers}): best of {len(samples)}: {seconds:.2f} s (all: {', '.join(f'{s:.2f}' for s, _ in samples)}) = "
        f"{rate:,.0f} events/s, {seconds / copy_s:.2f}× the COPY; CPU of this process {cpu:.2f} s "
        f"({result.count / cpu:,.0f} events per CPU-second); "
        f"ru_maxrss {rss_before:.0f} → {rss_after:.0f} MB; {result.as_dict()} {result.problem}".rstrip()
    )
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        verify()
        profiler.disable()
        print("  cProfile of one verify() (slower under the profiler), top entries by own time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(14)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "rate": rate,
        "copy_s": copy_s,
        "ratio_copy": seconds / copy_s,
        "ok": result.ok,
        "count": result.count,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
    }


def search_benchmark(args, results: dict) -> dict:
    from django.db import connection

    from audit.search import has_trigram_indexes
    from audit.trail import Filters

    indexed = has_trigram_indexes(connection)
    print(
        f"\n5. Text search (the trail's `text` filter: reason or object name contains, any case); pg_trgm "
        f"indexes {'in place' if indexed else 'MISSING (a full scan)'}; median of {args.runs}"
    )
    worst = 0.0
    for term in (RARE_WORD, "CAPA-2291", "weigh-scale", "no such words anywhere"):
        label = f"text = {term!r}"
        timed(label, page_outcome(Filters(text=term)), args.runs, results)
        worst = max(worst, results[label])
    return {"indexed": indexed, "worst_ms": worst}


if __name__ == "__main__":
    sys.exit(main())
