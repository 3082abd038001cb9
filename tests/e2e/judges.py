"""The outside judges of every page (issue 18 item 1): axe-core, injected into the page through
Playwright (evaluate runs outside the page's CSP), and the Nu HTML checker (vnu.jar, one Java run over
every saved page). Both come from tests/judges (`npm ci` there, from the committed lock file)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "tests" / "judges" / "node_modules"
AXE = MODULES / "axe-core" / "axe.min.js"
VNU = MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
SERIOUS = ("serious", "critical")


def missing_judges() -> str | None:
    if not AXE.exists() or not VNU.exists():
        return "tests/judges/node_modules is missing (npm ci in tests/judges)"
    if shutil.which("java") is None:
        return "no Java runtime for the Nu HTML checker"
    return None


def axe(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it stands (WCAG 2.x A and AA rules)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').split('\\n').slice(0, 2).join(' '))}));
        }"""
    )
    return [v for v in result if v["impact"] in SERIOUS]


def vnu(files: list[Path]) -> dict[str, list[str]]:
    """The Nu HTML checker's errors per file (one Java run for all of them)."""
    if not files:
        return {}
    done = subprocess.run(
        [
            "java",
            "-Xss4m",
            "-jar",
            str(VNU),
            "--format",
            "json",
            "--errors-only",
            "--exit-zero-always",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(done.stderr or done.stdout or '{"messages": []}')
    errors: dict[str, list[str]] = {}
    for message in report.get("messages", []):
        if message.get("type") != "error":
            continue
        name = Path(message.get("url", "").removeprefix("file:")).name
        errors.setdefault(name, []).append(
            f"line {message.get('lastLine')}: {message.get('message')} [{(message.get('extract') or '').strip()[:120]}]"
        )
    return errors
