"""Benchmark: a plant database's checksum (plant.plantdb) at two sizes, against a sorted SQL hash pass.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/fingerprint_bench.py \
        [--sizes 25 100] [--runs 3] [--old] [--no-sqlite]

A throwaway PostgreSQL database `cc_fingerprint_bench` is (re)created next to the one DATABASE_URL
names (bench/benchdb.py), bulk-loaded with generate_series to about SIZE MB — an integer-keyed table
(orders), a table keyed by text (cycles: its rows are sorted in the "C" collation, no index serves)
and one without a primary key (readings) — VACUUM ANALYZEd, and dropped at the end; then again at the
next size. Each method runs in a child process of its own, RUNS times, interleaved:

- new:      PostgresDatabase.checksum() — every table streamed through COPY into SHA-256;
- baseline: the sorted SQL hash pass, per table
            SELECT md5(string_agg(md5(t::text), '' ORDER BY <primary key, else every column>)) FROM t;
- old:      (--old) the checksum before it streamed: SELECT * into memory, sorted and hashed in Python;
- schema:   PostgresDatabase.structure(), what a fingerprint reads.

Printed per method: the median seconds (and the spread), the ratio to the baseline's median, the child
process's peak RSS (VmHWM) and its PostgreSQL backend's peak private memory (RssAnon sampled every
20 ms from /proc; shared buffers excluded). The same rows are then copied into a SQLite file and
SqliteDatabase.checksum() is timed against a plain read of every row in key order (and --old).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import benchdb  # noqa: E402

BENCH_DB = "cc_fingerprint_bench"
# Rows per MB of data (measured: 980k rows made 116 MB, an empty database about 8 MB).
ROWS_PER_MB = {"orders": 4170, "readings": 3240, "cycles": 1660}
EMPTY_MB = 8

LOAD = """
CREATE TABLE orders (id bigint PRIMARY KEY, line text NOT NULL, product text, qty integer,
    price numeric(12,2), created_at timestamptz, note text);
INSERT INTO orders SELECT g, 'Line ' || (g % 7), 'P-' || lpad((g % 5000)::text, 6, '0'), g % 113,
    (g % 10000) / 100.0, timestamptz '2026-01-01' + g * interval '1 second',
    CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('é', g % 20) || ' order ' || g END
    FROM generate_series(1, {orders}) g;
CREATE TABLE readings (line text, sensor integer, value double precision, taken_at timestamp, raw bytea);
INSERT INTO readings SELECT 'Line ' || (g % 7), g % 50, sqrt(g), timestamp '2026-01-01' + g * interval '1 second',
    decode(md5(g::text), 'hex') FROM generate_series(1, {readings}) g;
CREATE TABLE cycles (line text, seq integer, good_parts integer, scrap integer, payload jsonb,
    PRIMARY KEY (line, seq));
INSERT INTO cycles SELECT 'Line ' || (g % 7), g, g % 1000, g % 17,
    jsonb_build_object('op', g % 31, 'ok', g % 2 = 0) FROM generate_series(1, {cycles}) g;
"""
SQLITE_SCHEMA = """
CREATE TABLE orders (id INTEGER PRIMARY KEY, line TEXT NOT NULL, product TEXT, qty INTEGER, price TEXT,
    created_at TEXT, note TEXT);
CREATE TABLE readings (line TEXT, sensor INTEGER, value REAL, taken_at TEXT, raw BLOB);
CREATE TABLE cycles (line TEXT, seq INTEGER, good_parts INTEGER, scrap INTEGER, payload TEXT,
    PRIMARY KEY (line, seq));
"""


# --- Children: one method, one run; prints its figures ----------------------------------------------
def _baseline(target: str) -> None:
    import psycopg

    with psycopg.connect(target) as conn:
        keys: dict[str, list[str]] = {}
        for table, column in conn.execute(
            "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            "WHERE i.indisprimary AND c.relnamespace = 'public'::regnamespace ORDER BY 1, k.position"
        ):
            keys.setdefault(table, []).append(f'"{column}"')
        for (table,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall():
            order = keys.get(table) or [
                f'"{name}"'
                for (name,) in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attnum",
                    (f'public."{table}"',),
                )
            ]
            conn.execute(
                f"SELECT md5(string_agg(md5(t::text), '' ORDER BY {', '.join(order)})) "  # noqa: S608
                f'FROM public."{table}" t'
            ).fetchone()


def _old_postgres(target: str) -> None:
    """The checksum as it was: every table read whole into Python, sorted by its JSON, hashed."""
    import psycopg

    def digest(rows) -> str:
        h = hashlib.sha256()
        for row in rows:
            h.update(json.dumps(row, default=str, sort_keys=True).encode())
        return h.hexdigest()

    with psycopg.connect(target) as conn:
        for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
            rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()  # noqa: S608
            rows = sorted(rows, key=lambda r: json.dumps(r, default=str))
            digest(rows)


def _old_sqlite(target: str) -> None:
    conn = sqlite3.connect(target)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall():
        columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
        rows = conn.execute(f'SELECT * FROM "{name}" ORDER BY {", ".join(columns)}').fetchall()  # noqa: S608
        h = hashlib.sha256()
        for row in rows:
            h.update(json.dumps(row, default=str, sort_keys=True).encode())
    conn.close()


def _read_sqlite(target: str) -> None:
    """The floor for SQLite: every row read in the checksum's order, nothing hashed."""
    conn = sqlite3.connect(target)
    for name, order in (
        ("orders", "id"),
        (
            "readings",
            ", ".join(
                f"{c} COLLATE BINARY, typeof({c})" for c in ("line", "sensor", "value", "taken_at", "raw")
            ),
        ),
        ("cycles", "line, seq"),
    ):
        cursor = conn.execute(f"SELECT * FROM {name} ORDER BY {order}")  # noqa: S608
        while cursor.fetchmany(5000):
            pass
    conn.close()


def child(method: str, target: str) -> None:
    import psycopg  # noqa: F401 (imported before the clock starts, as in a worker)

    from plant.plantdb import PostgresDatabase, SqliteDatabase

    began = time.perf_counter()
    if method == "new":
        PostgresDatabase(target).checksum()
    elif method == "schema":
        PostgresDatabase(target).structure()
    elif method == "baseline":
        _baseline(target)
    elif method == "old":
        _old_postgres(target)
    elif method == "sqlite-new":
        SqliteDatabase(target).checksum()
    elif method == "sqlite-read":
        _read_sqlite(target)
    elif method == "sqlite-old":
        _old_sqlite(target)
    seconds = time.perf_counter() - began
    print(json.dumps({"seconds": seconds, "rss_mb": _status_mb("self", "VmHWM")}), flush=True)


# --- Parent ---------------------------------------------------------------------------------------------
def _status_mb(pid: int | str, field: str) -> float:
    """A memory figure of /proc/PID/status: VmHWM is the process's peak RSS (reset by exec, unlike
    ru_maxrss, which a child inherits from the parent it was forked from); RssAnon its private memory."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(method: str, target: str, admin: str) -> dict:
    """One run of `method` in a child process; its PostgreSQL backend's private memory sampled meanwhile."""
    import psycopg

    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", method, "--target", target],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    postgres = not method.startswith("sqlite")
    peak, pids = 0.0, set()
    with psycopg.connect(admin, autocommit=True) as conn:
        while proc.poll() is None:
            if postgres and not pids:
                pids = {
                    row[0]
                    for row in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s", (BENCH_DB,)
                    )
                }
            peak = max([peak, *(_status_mb(pid, "RssAnon") for pid in pids)])
            time.sleep(0.02)
    out = proc.stdout.read().strip().splitlines()
    if proc.returncode or not out:
        raise SystemExit(f"{method} failed")
    return {**json.loads(out[-1]), "backend_mb": peak if postgres else None}


def measure(methods: list[str], target: str, admin: str, runs: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {m: [] for m in methods}
    run_child(methods[0], target, admin)  # warm the cache: every run reads the same pages
    for _ in range(runs):
        for method in methods:  # interleaved: a busy moment on the machine spreads over all of them
            results[method].append(run_child(method, target, admin))
    return results


def report(title: str, results: dict[str, list[dict]], baseline: str) -> None:
    base = statistics.median(r["seconds"] for r in results[baseline])
    print(f"\n{title}")
    print(
        f"  {'method':<12} {'median s':>9} {'spread s':>13} {'× baseline':>11} {'RSS MB':>7} {'backend MB':>11}"
    )
    for method, runs in results.items():
        seconds = [r["seconds"] for r in runs]
        median = statistics.median(seconds)
        backend = max((r["backend_mb"] or 0) for r in runs) if runs[0]["backend_mb"] is not None else None
        print(
            f"  {method:<12} {median:>9.3f} {min(seconds):>6.3f}–{max(seconds):<6.3f} {median / base:>11.2f}"
            f" {max(r['rss_mb'] for r in runs):>7.1f} {'—' if backend is None else f'{backend:.1f}':>11}"
        )
    if "new" in results:
        ratio = statistics.median(r["seconds"] for r in results["new"]) / base
        print(
            f"  target the checksum ≤ 1.2× a sorted SQL hash pass (issue 20): "
            f"{'met' if ratio <= 1.2 else 'NOT met'} ({ratio:.2f}×; memory: compare the RSS across sizes)"
        )


def load_postgres(url: str, size_mb: int) -> tuple[str, str, float]:
    import psycopg

    admin, target = benchdb.create(url, BENCH_DB)
    counts = {table: per_mb * max(size_mb - EMPTY_MB, 1) for table, per_mb in ROWS_PER_MB.items()}
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(LOAD.format(**counts))
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6
    return admin, target, size


def copy_to_sqlite(target: str, path: Path) -> float:
    import psycopg

    db = sqlite3.connect(path)
    db.executescript(SQLITE_SCHEMA)
    with psycopg.connect(target) as conn:
        for table in ("orders", "readings", "cycles"):
            cursor = conn.cursor(name=f"copy_{table}")
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            while rows := cursor.fetchmany(20000):
                rows = [
                    [v if v is None or isinstance(v, int | float | str | bytes) else str(v) for v in r]
                    for r in rows
                ]
                db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)  # noqa: S608
            cursor.close()
    db.commit()
    db.close()
    return path.stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 100], help="database sizes in MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old", action="store_true", help="also the checksum before it streamed")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.target)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must name a PostgreSQL server (the bench database is made next to it)")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; runs={args.runs}")
    methods = ["baseline", "new", *(["old"] if args.old else []), "schema"]
    admin = None
    try:
        for size in args.sizes:
            began = time.perf_counter()
            admin, target, actual = load_postgres(url, size)
            rows = sum(ROWS_PER_MB.values()) * max(size - EMPTY_MB, 1)
            print(
                f"\n== {actual:.0f} MB PostgreSQL database, {rows:,} rows (loaded in {time.perf_counter() - began:.1f} s)"
            )
            report(f"PostgreSQL, {actual:.0f} MB", measure(methods, target, admin, args.runs), "baseline")
            if not args.no_sqlite:
                with tempfile.TemporaryDirectory(prefix="fp-bench-") as folder:
                    path = Path(folder) / "plant.sqlite3"
                    mb = copy_to_sqlite(target, path)
                    sqlite_methods = ["sqlite-read", "sqlite-new", *(["sqlite-old"] if args.old else [])]
                    report(
                        f"SQLite, {mb:.0f} MB",
                        measure(sqlite_methods, str(path), admin, args.runs),
                        "sqlite-read",
                    )
            print(f"  (load average now {os.getloadavg()[0]:.2f})")
            benchdb.drop(admin, BENCH_DB)
    finally:
        if admin:
            benchdb.drop(admin, BENCH_DB)


if __name__ == "__main__":
    main()
