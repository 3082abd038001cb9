"""A pytest plugin for mutation runs only (scripts/mutation.sh, `[tool.mutmut]` in pyproject.toml).

mutmut runs one pytest session per mutant in forked processes, several at once. Each session gets
its own SQLite test database, copied from a migrated template (migrating per mutant would cost
more than most mutants' tests), and its own temporary directory, so two mutants never share a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_OWN: list[Path] = []


def _unique(config) -> str:
    return f"mutmut-{os.getpid()}"


def pytest_configure(config):
    if not config.option.basetemp:
        # under the project's var/ (mutants/var in a mutmut run), where scripts/mutation.sh sweeps it
        base = Path(__file__).resolve().parent.parent / "var" / "tmp"
        base.mkdir(parents=True, exist_ok=True)
        config.option.basetemp = str(base / _unique(config))


def pytest_sessionstart(session):
    from django.conf import settings

    if settings.DB_VENDOR != "sqlite3":
        return
    var = Path(settings.VAR_DIR)
    template = var / "mutmut-template.sqlite3"
    if not template.exists():
        scratch = var / f"mutmut-template-{os.getpid()}.sqlite3"
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=Path(settings.BASE_DIR),
            env={**os.environ, "DATABASE_URL": f"sqlite:///{scratch}"},
            check=True,
        )
        scratch.replace(template)
    own = var / f"{_unique(session.config)}.sqlite3"
    shutil.copyfile(template, own)
    _OWN[:] = [own, Path(f"{own}-wal"), Path(f"{own}-shm")]
    settings.DATABASES["default"]["TEST"]["NAME"] = str(own)
    session.config.option.reuse_db = True
    session.config.option.create_db = False


def pytest_collection_modifyitems(session, config, items):
    """The rule tests first: with -x a mutant they kill is killed before the slower tests run."""
    items.sort(key=lambda item: "/test_rules_" not in item.nodeid)


def pytest_unconfigure(config):
    for path in _OWN:
        path.unlink(missing_ok=True)
    if Path(config.option.basetemp).name == _unique(config):
        shutil.rmtree(config.option.basetemp, ignore_errors=True)
