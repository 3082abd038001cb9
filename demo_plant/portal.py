"""How the portal deploys to the demo plant: an environment's `pipeline` (see plant/adapters.py and environments/pipelines.py).

Snapshot the app directory, back up the environment's SQLite database, apply the release's SQL and
install the artifact, push the label layout to the line (equipment: simulated outside PROD; undone by
pushing the previous layout back), then smoke-test by printing a label. Business signals: the ERP
confirmations that failed (compared with the baseline after the apply: any new failure rolls back),
cycles per minute (may not halve), and the queue of unconfirmed messages (at most 50: PROD readiness).
Before a release, its recorded ERP messages are replayed and a production report is run on copies of
the database before and after the migration. The installer's ``--check``
is the dry run the portal asks when an MES artifact is recorded.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pipeline(root: str | Path, site: str, tier: str, base_url: str, smoke_delay_seconds: int = 900) -> dict:
    env_dir = Path(root).resolve() / site / tier
    python = sys.executable
    push = [python, "-m", "demo_plant.equipment", "--env-dir", str(env_dir), "--recipe", "label-layout"]
    return {
        "smoke_delay_seconds": smoke_delay_seconds,
        "snapshot": {"adapter": "directory", "path": str(env_dir / "app")},
        "backup": {"adapter": "sqlite", "database": str(env_dir / "mes.sqlite3")},
        "apply": [
            {"adapter": "sql", "database": f"sqlite:///{env_dir / 'mes.sqlite3'}"},
            {
                "adapter": "command",
                "command": [python, "-m", "demo_plant.install", "--app-dir", str(env_dir / "app")],
                # Run on an MES artifact when it is recorded: refused there if it cannot be installed.
                "dry_run": [python, "-m", "demo_plant.install", "--check"],
                "product": "MES",
                "cwd": str(REPO),
                "timeout": 60,
            },
        ],
        "equipment": [
            {
                "adapter": "command",
                "command": push,
                "revert_command": [*push, "--revert"],  # the rollback pushes the previous recipe back
                "cwd": str(REPO),
                "timeout": 60,
                "writes_equipment": True,
            },
        ],
        # Configuration bundles (ERP settings, integration mappings): one JSON file each.
        "config": {"adapter": "config_dir", "path": str(env_dir / "config")},
        # Feature flags (the portal's standard changes): app/flags.json, read by the server.
        "flags": {
            "adapter": "command",
            "command": [
                python,
                "-m",
                "demo_plant.flags",
                "--env-dir",
                str(env_dir),
                "--flag",
                "{flag}",
                "--state",
                "{state}",
            ],
            "cwd": str(REPO),
            "timeout": 30,
        },
        "signals": [
            {
                "adapter": "http",
                "name": "ERP confirmations failed",
                "url": f"{base_url.rstrip('/')}/{site}/{tier}/signals?window={{window}}",
                "field": "confirmations_failed",
                "good": "lower",
                "tolerance": 0,
            },
            {
                "adapter": "http",
                "name": "Cycles per minute",
                "url": f"{base_url.rstrip('/')}/{site}/{tier}/signals?window={{window}}",
                "field": "cycles_per_minute",
                "good": "higher",
                "tolerance": 0.5,
            },
            {
                "adapter": "sql",
                "name": "Unconfirmed queue depth",
                "database": f"sqlite:///{env_dir / 'mes.sqlite3'}",
                "query": "SELECT count(*) FROM confirmations WHERE status = 'failed'",
                "max": 50,
            },
        ],
        "smoke": {
            "adapter": "http",
            "url": f"{base_url.rstrip('/')}/{site}/{tier}/label",
            "method": "POST",
            "body": '{"line": "Line 2"}',
            "expect_status": 200,
            "expect_body": "printed",
            "samples": 5,
        },
        # Computed evidence on scratch copies of this database (deployments/checks.py): the recorded
        # ERP production orders replayed before and after the migration, and a report compared.
        "replay": {
            "messages": "SELECT message_key, interface, payload FROM erp_messages ORDER BY id",
            "query": "INSERT INTO erp_confirmations (message_key, order_no, line, qty) VALUES (:key, "
            "json_extract(:payload, '$.order'), json_extract(:payload, '$.line'), json_extract(:payload, '$.qty'))",
            "output": "SELECT order_no, line, qty FROM erp_confirmations WHERE message_key = :key ORDER BY id",
        },
        "parallel": [
            {
                "name": "Daily output by line",
                "query": "SELECT line, substr(completed_at, 1, 10) AS day, count(*), sum(good_parts) "
                "FROM cycles GROUP BY line, day ORDER BY line, day",
            }
        ],
    }
