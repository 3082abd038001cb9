"""Find interface text in templates that is not marked for translation.

A template's visible text and its human attributes (title, aria-label, placeholder, alt) must sit
inside ``{% translate %}`` / ``{% blocktranslate %}``: whatever is left once the template syntax, the
markup and the marked text are taken out must hold no words. A few tokens read the same in every
language (product names, units, file formats) and may stand alone.

Run as a script to list what is left: ``python tests/i18n_lint.py [template ...]``.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"

# Read the same in English and German; may appear unmarked.
SAME_IN_EVERY_LANGUAGE = {
    "PCC",
    "RFC",
    "UTC",
    "SHA",
    "JSON",
    "CSV",
    "XLSX",
    "PDF",
    "ICS",
    "API",
    "URL",
    "DEV",
    "UAT",
    "PROD",
    "v",
    "x",
    "ok",
    "OK",
    "Plant",
    "Change",
    "Control",
    "TOTP",
    "HMAC",
    "OpenAPI",
    "Swagger",
    "ID",
    "DORA",
}

_BLOCKS = [
    re.compile(r"\{#.*?#\}", re.S),
    re.compile(r"\{%\s*comment\s*%\}.*?\{%\s*endcomment\s*%\}", re.S),
    re.compile(r"\{%\s*blocktrans(?:late)?\b.*?%\}.*?\{%\s*endblocktrans(?:late)?\s*%\}", re.S),
    re.compile(r"<script\b.*?</script>", re.S | re.I),
    re.compile(r"<style\b.*?</style>", re.S | re.I),
    re.compile(r"<code\b.*?</code>", re.S | re.I),
    re.compile(r"<pre\b.*?</pre>", re.S | re.I),
]
_TAG = re.compile(r"\{%.*?%\}", re.S)
_VAR = re.compile(r"\{\{.*?\}\}", re.S)
_HUMAN_ATTR = re.compile(
    r"""\s(?:title|aria-label|placeholder|alt|data-confirm)\s*=\s*("[^"]*"|'[^']*')""", re.I
)
_MARKUP = re.compile(r"<[^>]*>", re.S)
_WORD = re.compile(r"[^\W\d_]{2,}|\b[^\W\d_]\b")


def _words(text: str) -> list[str]:
    text = html.unescape(text)
    return [w for w in _WORD.findall(text) if w not in SAME_IN_EVERY_LANGUAGE]


def unmarked(source: str) -> list[str]:
    """The pieces of text in a template that hold words but are not marked for translation."""
    for block in _BLOCKS:
        source = block.sub(" ", source)
    found: list[str] = []
    for attr in _HUMAN_ATTR.findall(source):
        value = _VAR.sub(" ", _TAG.sub(" ", attr[1:-1]))
        if _words(value):
            found.append(attr)
    source = _TAG.sub(" ", _VAR.sub(" ", source))
    source = _MARKUP.sub("\n", source)
    for line in source.splitlines():
        if _words(line):
            found.append(line.strip())
    return found


def templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in {".html", ".txt"})


def report(paths: list[Path]) -> dict[str, list[str]]:
    result = {}
    for path in paths:
        left = unmarked(path.read_text(encoding="utf-8"))
        if left:
            result[str(path.relative_to(ROOT))] = left
    return result


if __name__ == "__main__":
    chosen = [Path(a).resolve() for a in sys.argv[1:]] or templates()
    problems = report(chosen)
    for name, pieces in problems.items():
        print(name)
        for piece in pieces:
            print("   ", piece[:160])
    print(f"{sum(len(v) for v in problems.values())} unmarked piece(s) in {len(problems)} template(s)")
    sys.exit(1 if problems else 0)
