"""The German catalog against the source: what `makemessages` would extract now, what the committed
catalog holds, and whether the compiled catalog is the committed one."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# What makemessages reads (the apps, templates and manage.py) — not tests, not installed packages.
SKIP = {
    ".venv",
    "var",
    "tests",
    "node_modules",
    "test-artifacts",
    ".git",
    "static",
    "docs",
    "bench",
    "locale",
}
MAKEMESSAGES = ["makemessages", "-l", "de", "--no-location", "--no-obsolete", "--no-wrap"]


def missing_gettext() -> str | None:
    for tool in ("xgettext", "msgmerge", "msgfmt"):
        if shutil.which(tool) is None:
            return f"GNU gettext's {tool} is not installed (Debian package gettext)"
    return None


def entries(po_text: str) -> dict[tuple[str, str], list[str]]:
    """{(context, msgid): [msgstr, …]} of a .po file, with a 'fuzzy' marker kept as msgstr '#fuzzy'."""
    found: dict[tuple[str, str], list[str]] = {}
    for block in re.split(r"\n\s*\n", po_text):
        fields: dict[str, list[str]] = {}
        current = None
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line)
            if match:
                current = match.group(1)
                fields[current] = [match.group(2)]
            elif line.startswith('"') and current:
                fields[current].append(line[1:-1])
        if "msgid" not in fields:
            continue
        msgid = "".join(fields["msgid"])
        if not msgid:
            continue  # the header
        strs = ["".join(v) for k, v in sorted(fields.items()) if k.startswith("msgstr")]
        found[("".join(fields.get("msgctxt", [""])), msgid)] = ["#fuzzy"] if fuzzy else strs
    return found


def extract(workdir: Path) -> dict[tuple[str, str], list[str]]:
    """Run makemessages on a copy of the source in ``workdir`` and return the catalog it writes."""
    for item in ROOT.iterdir():
        if item.name in SKIP or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(
                item, workdir / item.name, ignore=shutil.ignore_patterns("__pycache__", "migrations")
            )
        elif item.suffix in {".py"}:
            shutil.copy2(item, workdir / item.name)
    (workdir / "locale" / "de" / "LC_MESSAGES").mkdir(parents=True)
    env = {**os.environ, "VAR_DIR": str(workdir / "var"), "PYTHONPATH": str(workdir)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", *MAKEMESSAGES],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return entries((workdir / "locale" / "de" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8"))


def compiled(mo: Path) -> dict:
    with mo.open("rb") as handle:
        return {k: v for k, v in gettext.GNUTranslations(handle)._catalog.items() if k != ""}
