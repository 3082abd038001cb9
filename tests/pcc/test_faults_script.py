"""bench/faults.py keeps working: a fast subset of the FAULTS.md cases, run as a separate process with
`--url` against this test's live portal and its PostgreSQL test database (the script builds its own
sites, people and RFCs there and reads their rows). The full run starts its own stack (see the script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# Replayed and expired links, self-approval, a 2 GB body, cross-site POSTs.
FAST_CASES = "1,2,7,13,20"

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def test_a_fast_subset_of_the_fault_cases_passes_against_a_live_portal(live_server, settings):
    # The script plays the reverse proxy: each of its sessions has its own client address.
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": _database_url(),
        "VAR_DIR": str(settings.VAR_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "FAULTS_MD5_PASSWORDS": "1",  # the suite's live server checks the suite's MD5 hashes
    }
    result = subprocess.run(
        [sys.executable, "bench/faults.py", "--url", live_server.url, "--only", FAST_CASES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = [line for line in output.splitlines() if line.startswith("#")]
    assert len(lines) == len(FAST_CASES.split(",")), output
    assert all(": PASS (" in line for line in lines), output
