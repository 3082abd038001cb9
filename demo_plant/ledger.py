"""The demo plant's own count of what it was asked to change: one JSON line per effect.

``<env_dir>/ledger.jsonl`` sits beside ``app/`` and ``mes.sqlite3``, outside both, so a rollback that
restores the application directory or the database from a backup leaves it alone. The installer writes
``install`` when it has installed a release, the equipment command ``push`` or ``revert`` (simulated ones
too, flagged): each with the deployment that asked (``$PCC_DEPLOYMENT``). A release's SQL records itself
in its own way (a row it inserts), as migration tools keep a history table. A soak compares these
lines with the portal's journal: an apply the plant counted twice is a step applied twice.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

NAME = "ledger.jsonl"


def record(env_dir: Path, action: str, **fields) -> None:
    """Append one line; O_APPEND makes a short line's write atomic between processes."""
    line = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "action": action,
        "deployment": os.environ.get("PCC_DEPLOYMENT", ""),
        "pid": os.getpid(),
        **fields,
    }
    payload = (json.dumps(line, sort_keys=True) + "\n").encode()
    fd = os.open(Path(env_dir) / NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)


def read(env_dir: Path) -> list[dict]:
    path = Path(env_dir) / NAME
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
