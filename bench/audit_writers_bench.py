"""Benchmark: audit writers without a global lock (docs/audit-chain.md, "Writers without a global lock").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/audit_writers_bench.py \
        [--writers 1,2,4,8] [--seconds 3] [--pause-ms 2,0] [--lanes 8,1] [--db NAME] [--keep]

W writer processes (forked after set-up, each its own connection) append for a fixed time; each
transaction is one audit.services.record() plus an in-transaction pause (`pg_sleep`, --pause-ms: the
work a real transaction does around its event while it holds its lane). Printed: committed events/s
per W, for settings.AUDIT_LANES = each of --lanes (1 = one lane: the old global lock), with the load
average at the time; then audit.services.verify() over everything written.

A throwaway database `cc_audit_bench_lanes` (--db) is (re)created next to the one DATABASE_URL names,
migrated, and dropped at the end (--keep keeps it); VAR_DIR is a fresh temp dir.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import benchdb  # noqa: E402

BENCH_DB = "cc_audit_bench_lanes"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _writer(n: int, seconds: float, pause_ms: int, start, results) -> None:
    """One writer process: record() + pause per transaction until the deadline; sends its count."""
    from django.db import connection, transaction

    from audit.services import record

    done = 0
    try:
        start.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            with transaction.atomic():
                record("bench.writer.wrote", actor_name=f"writer-{n}", after={"n": n, "i": done})
                if pause_ms:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_sleep(%s)", [pause_ms / 1000])
            done += 1
        results.put((n, done, None))
    except Exception as exc:  # reported by the parent
        results.put((n, done, f"{exc.__class__.__name__}: {exc}"))
    finally:
        connection.close()


def run(writers: int, seconds: float, pause_ms: int) -> tuple[float, int, list[str]]:
    from django.db import connections

    connections.close_all()  # no connection crosses the fork
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    procs = [
        context.Process(target=_writer, args=(n, seconds, pause_ms, start, results)) for n in range(writers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.3)  # all forked and waiting
    began = time.perf_counter()
    start.set()
    counts, errors = [], []
    for _ in procs:
        _, done, error = results.get(timeout=seconds + 120)
        counts.append(done)
        if error:
            errors.append(error)
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    return sum(counts) / elapsed, sum(counts), errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=_ints, default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=3.0, help="per run")
    parser.add_argument("--pause-ms", type=_ints, default=[2, 0], help="in-transaction pause(s), ms")
    parser.add_argument("--lanes", type=_ints, default=[8, 1], help="settings.AUDIT_LANES to compare")
    parser.add_argument("--db", default=BENCH_DB)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        parser.error("set DATABASE_URL to a PostgreSQL server (postgres://user@host:port/db)")
    var_dir = tempfile.mkdtemp(prefix="cc-audit-writers-")
    admin_url, os.environ["DATABASE_URL"] = benchdb.create(url, args.db)
    os.environ["VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from audit.services import verify

        call_command("migrate", verbosity=0, interactive=False)
        print(
            f"Audit writers benchmark ({os.cpu_count()} CPUs; database {args.db}; {args.seconds:g} s per run)"
        )
        print("  lanes  pause   writers  events/s   events   load average (1, 5, 15 min)")
        failed = False
        for lanes in args.lanes:
            settings.AUDIT_LANES = lanes
            for pause in args.pause_ms:
                base = None
                for writers in args.writers:
                    rate, count, errors = run(writers, args.seconds, pause)
                    base = base or rate
                    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
                    print(
                        f"  {lanes:>5}  {pause:>2} ms  {writers:>7}  {rate:>8,.0f}  {count:>7,}   {load}"
                        f"   (×{rate / base:.2f} of 1 writer)",
                        flush=True,
                    )
                    for error in errors:
                        failed = True
                        print(f"    writer error: {error}")
        began = time.perf_counter()
        result = verify()
        print(f"verify(): {result.as_dict()} {result.problem} ({time.perf_counter() - began:.2f} s)")
        return 0 if result.ok and not failed else 1
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            benchdb.drop(admin_url, args.db)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
