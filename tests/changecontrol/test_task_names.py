"""Every task the beat schedules and every task a nudge names is one a worker knows (CELERY.md).

A module moved out of `tasks.py` is not autodiscovered: its messages would reach the worker as
"unregistered task" and be dropped, while the rows waited for the sweep.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"""(?:nudge|send_task|signature)\(\s*["']([\w.]+)["']""")
CONSTANT = re.compile(r"""^[A-Z_]*TASK\s*=\s*["']([\w.]+)["']""", re.M)


def _named_in_source() -> set[str]:
    names = set()
    for package in (
        "core",
        "audit",
        "outbox",
        "environments",
        "accounts",
        "plant",
        "releases",
        "approvals",
        "deployments",
        "workflow",
        "reports",
        "changecontrol",
    ):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            names |= set(NAMED.findall(text)) | set(CONSTANT.findall(text))
    return {name for name in names if re.search(r"\.\w*tasks\.", name)}


def test_every_scheduled_or_nudged_task_is_registered_in_a_fresh_worker_app():
    wanted = _named_in_source()
    assert {"deployments.tasks.run_deployment", "deployments.tasks.run_refresh"} <= wanted
    # A fresh interpreter, as a worker starts: only what autodiscovery finds is registered.
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'changecontrol.settings'); "
        "django.setup(); from changecontrol.celery import app; app.loader.import_default_modules(); "
        "print('\\n'.join(sorted(app.tasks)))"
    )
    registered = set(
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert wanted <= registered, sorted(wanted - registered)
