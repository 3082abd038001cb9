"""Create demo environments: ``<root>/<SITE>/<TIER>/`` with ``app/release.json`` and ``mes.sqlite3``
(PROD's with the ERP messages it recorded).

    python -m demo_plant.layout --root var/plant --sites BER,CHI,OPEN

Idempotent: an existing environment keeps its installed release and its database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sqlite3
import sys
from pathlib import Path

TIERS = ("DEV", "UAT", "PROD")
BASELINE = {"version": "2.3.1", "label_delay_ms": 60, "broken": False}
# Site and tier names become path segments: allow nothing that could climb out of the root.
NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, printed_at TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, completed_at TEXT NOT NULL,
    good_parts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS confirmations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, ref INTEGER NOT NULL, sent_at TEXT NOT NULL,
    status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS erp_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_key TEXT NOT NULL, interface TEXT NOT NULL,
    payload TEXT NOT NULL, sender TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS erp_confirmations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_key TEXT NOT NULL, order_no TEXT NOT NULL,
    line TEXT NOT NULL, qty INTEGER NOT NULL);
"""
# The production orders the ERP sent PROD, recorded as they arrived: the message set a release's
# replay reconciliation replays (UAT receives it, masked, with the data refresh).
RECORDED_MESSAGES = [
    (f"ORD-{number}", "erp.production_order", json.dumps({"order": f"PO-{number}", "line": line, "qty": qty}))
    for number, line, qty in (
        (4711, "Line 1", 120),
        (4712, "Line 2", 80),
        (4713, "Line 2", 200),
        (4714, "Line 3", 40),
    )
]


def default_root() -> Path:
    return Path(os.environ.get("VAR_DIR", "var")) / "plant"


def connect(env_dir: Path) -> sqlite3.Connection:
    """Open the environment's database, creating the tables if they are missing."""
    conn = sqlite3.connect(env_dir / "mes.sqlite3", timeout=10)
    conn.executescript(SCHEMA)
    return conn


def validate_release(data: object) -> dict:
    """Return the release fields the server uses, or raise ValueError saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("release must be a JSON object")
    version, delay, broken = data.get("version"), data.get("label_delay_ms"), data.get("broken", False)
    if not isinstance(version, str) or not version:
        raise ValueError("release has no version")
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 60_000:
        raise ValueError("label_delay_ms must be an integer from 0 to 60000")
    if not isinstance(broken, bool):
        raise ValueError("broken must be true or false")
    unconfirmed = data.get("confirmations_broken", False)
    if not isinstance(unconfirmed, bool):
        raise ValueError("confirmations_broken must be true or false")
    release = {"version": version, "label_delay_ms": delay, "broken": broken}
    return {**release, "confirmations_broken": True} if unconfirmed else release


def write_release(app_dir: Path, release: dict) -> Path:
    """Write ``release.json`` atomically: the server never sees half a file."""
    app_dir.mkdir(parents=True, exist_ok=True)
    target = app_dir / "release.json"
    tmp = app_dir / f".release.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(release, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def config_of(site: str, tier: str) -> dict[str, dict]:
    """The demo's configuration bundles as a new environment starts: the same ERP settings and mappings
    everywhere but the label printer, which PROD has its own of (drift by key, on purpose)."""
    return {
        "erp-settings": {
            "plant.code": f"{site}-1000",
            "currency": "EUR",
            "confirmation.batch_size": "1",
            "label.printer": "ZT410" if tier == "PROD" else "ZT230",
        },
        "integration-mappings": {"scrap.reason.01": "SCRAP-MAT", "scrap.reason.02": "SCRAP-SETUP"},
    }


def ensure_environment(root: str | Path, site: str, tier: str, version: str = "2.3.1") -> Path:
    """Create one environment if it is missing; an existing release, database or configuration is left alone."""
    if not NAME.match(site) or not NAME.match(tier):
        raise ValueError(f"bad site or tier name: {site!r}/{tier!r}")
    env_dir = Path(root) / site / tier
    (env_dir / "app").mkdir(parents=True, exist_ok=True)
    if not (env_dir / "config").exists():
        (env_dir / "config").mkdir()
        for name, settings in config_of(site, tier).items():
            (env_dir / "config" / f"{name}.json").write_text(
                json.dumps(settings, indent=2) + "\n", encoding="utf-8"
            )
    if not (env_dir / "app" / "release.json").exists():
        write_release(env_dir / "app", {**BASELINE, "version": version})
    with contextlib.closing(connect(env_dir)) as conn, conn:
        if tier == "PROD" and not conn.execute("SELECT 1 FROM erp_messages LIMIT 1").fetchone():
            conn.executemany(
                "INSERT INTO erp_messages (message_key, interface, payload, sender) VALUES (?, ?, ?, 'erp-prod')",
                RECORDED_MESSAGES,
            )
    return env_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the demo plant's environments.")
    parser.add_argument("--root", type=Path, default=default_root())
    parser.add_argument("--sites", default="BER,CHI,OPEN", help="comma-separated site codes")
    parser.add_argument("--tiers", default=",".join(TIERS), help="comma-separated tiers")
    parser.add_argument("--version", default=BASELINE["version"], help="release for new environments")
    args = parser.parse_args(argv)
    try:
        for site in filter(None, (s.strip() for s in args.sites.split(","))):
            for tier in filter(None, (t.strip() for t in args.tiers.split(","))):
                print(ensure_environment(args.root, site, tier, args.version))
    except ValueError as exc:
        print(f"layout: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
