"""A pytest plugin: which requirements (PRODUCT.md's IDs, reports/data/requirements.json) each test
names, written into the JUnit XML report for the portal's traceability matrix (issue 17 item 4).

A test names a requirement by a marker (`@pytest.mark.req("W3", "W5")`, or a module's `pytestmark`),
or by writing its ID in its name, its docstring, its class's docstring or its module's docstring
("... refused at a shift handover (W3)"). Each test case in the report carries a property
`req` = "W3,W5"; the report as a whole carries the commit and the portal's version.

Loaded by tests/conftest.py; `-p tests.traceability_plugin` loads it for another suite.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "reports" / "data" / "requirements.json"
_ID = re.compile(r"(?<![A-Za-z0-9])(E10|[ERAWXC][1-9])(?![0-9A-Za-z])")


def known_ids() -> frozenset[str]:
    data = json.loads(REQUIREMENTS.read_text(encoding="utf-8"))
    return frozenset(r["id"] for r in data["requirements"])


def named(item, known: frozenset[str]) -> set[str]:
    found: set[str] = set()
    for marker in item.iter_markers(name="req"):
        found.update(str(arg) for arg in marker.args)
    texts = [getattr(item, "originalname", item.name).upper()]  # test_same_artifact_x5 names X5
    function = getattr(item, "function", None)
    for owner in (function, getattr(item, "cls", None), getattr(item, "module", None)):
        if owner is not None and owner.__doc__:
            texts.append(owner.__doc__)
    for text in texts:
        found.update(_ID.findall(text))
    return found & known


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _version() -> str:
    match = re.search(r'__version__ = "([^"]+)"', (ROOT / "core" / "version.py").read_text(encoding="utf-8"))
    return match.group(1) if match else ""


def pytest_configure(config):
    config.addinivalue_line("markers", "req(*ids): the requirements (PRODUCT.md IDs) this test checks")


def pytest_sessionstart(session):
    from _pytest.junitxml import xml_key

    xml = session.config.stash.get(xml_key, None)
    if xml is not None:
        xml.add_global_property("commit", _commit())
        xml.add_global_property("portal_version", _version())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    known = known_ids()
    unknown = {
        str(arg)
        for item in items
        for m in item.iter_markers(name="req")
        for arg in m.args
        if str(arg) not in known
    }
    if unknown:
        raise pytest.UsageError(f"req markers name unknown requirements: {', '.join(sorted(unknown))}")
    for item in items:
        ids = named(item, known)
        if ids:
            item.user_properties.append(("req", ",".join(sorted(ids, key=_order))))


def _order(rid: str) -> tuple[str, int]:
    return rid[0], int(rid[1:])
