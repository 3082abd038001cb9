"""A throwaway PostgreSQL database for a benchmark: created fresh, dropped afterwards, never the
developer's own. Shared by bench/engine_bench.py and bench/audit_bench.py."""

from __future__ import annotations

import urllib.parse


def urls(url: str, name: str) -> tuple[str, str]:
    """(the `postgres` maintenance database's URL, the benchmark database's URL) for a DATABASE_URL."""
    parts = urllib.parse.urlsplit(url)
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    admin = urllib.parse.urlunsplit((scheme, parts.netloc, "/postgres", parts.query, ""))
    bench = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    return admin, bench


def _run(admin_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def create(url: str, name: str) -> tuple[str, str]:
    admin, bench = urls(url, name)
    _run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return admin, bench


def drop(admin: str, name: str) -> None:
    _run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def exists(admin: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
