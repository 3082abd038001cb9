"""The demo plant for tests: its HTTP server as a real subprocess, environments under a temp root."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.net import free_port
from tests.workers import wait_until

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def running_plant(root: Path, produce_every: float = 0) -> Iterator[str]:
    """The demo plant's server on a free port; `produce_every`: PROD lines write a cycle that often."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo_plant.server",
            "--port",
            str(port),
            "--root",
            str(root),
            "--produce-every",
            str(produce_every),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(base + "/", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(up, timeout=20)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def site_plant(root: Path, site, **environment_fields) -> Iterator[Path]:
    """The demo plant for `site`'s DEV, UAT and PROD, running, with each environment's pipeline pointing
    at it (smoke test at once, not after 15 minutes)."""
    from demo_plant.layout import ensure_environment
    from demo_plant.portal import pipeline
    from environments.models import Environment

    for tier in ("DEV", "UAT", "PROD"):
        ensure_environment(root, site.code, tier)
    with running_plant(root) as base:
        for env in Environment.objects.filter(site=site):
            env.pipeline = pipeline(root, site.code, env.tier, base, smoke_delay_seconds=0)
            for name, value in environment_fields.items():
                setattr(env, name, value)
            env.save(update_fields=["pipeline", *environment_fields])
        yield root
