"""The traceability matrix (issue 17 item 4; GAMP 5): each requirement of the product (PRODUCT.md's
IDs, copied as data in reports/data/requirements.json) → the tests that name it → their result in
the last CI run → the gaps (requirements without a passing test).

The CI run's results come from JUnit XML reports (`.ci/run` keeps one per suite under
test-artifacts/); tests/traceability_plugin.py writes into them which requirements each test names,
the commit and the portal's version. `manage.py traceability` reads them, writes the matrix as CSV
and PDF, and with --save keeps the run for the portal's page (audit/traceability/).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from audit.trail import neutralise

REQUIREMENTS = Path(__file__).resolve().parent / "data" / "requirements.json"
OUTCOMES = ("passed", "failed", "skipped")
# In English in the CSV (machine-readable); translated on the page and in the PDF (Row.status_text).
STATUS_TEXT = {
    "passing": gettext_noop("Passing"),
    "failing": gettext_noop("Failing"),
    "not_run": gettext_noop("Not run (skipped)"),
    "untested": gettext_noop("No test"),
}


class ReportError(ValueError):
    """A file that is not a JUnit XML report this matrix can read."""


def requirements() -> list[dict]:
    return json.loads(REQUIREMENTS.read_text(encoding="utf-8"))["requirements"]


@dataclass
class Results:
    """Test cases of one or more JUnit reports: [{"test", "suite", "outcome", "reqs"}], plus what the
    reports say about themselves."""

    cases: list[dict] = field(default_factory=list)
    commit: str = ""
    portal_version: str = ""
    suites: list[str] = field(default_factory=list)


def read_junit(data: bytes, suite: str, into: Results | None = None) -> Results:
    """Add the test cases of one JUnit XML report (as pytest writes it) to `into`."""
    results = into or Results()
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data)
    except DefusedXmlException:
        raise ReportError(f"{suite}: a JUnit report declares no DTD or entities.") from None
    except ParseError as exc:
        raise ReportError(f"{suite}: not XML ({exc}).") from None
    suites = (
        [root] if root.tag == "testsuite" else root.findall("testsuite") if root.tag == "testsuites" else []
    )
    if not suites:
        raise ReportError(f"{suite}: not a JUnit report (no <testsuite>).")
    for element in suites:
        for prop in element.findall("properties/property"):
            name, value = prop.get("name"), prop.get("value", "")
            if name == "commit" and value and not results.commit:
                results.commit = value[:40]
            elif name == "portal_version" and value and not results.portal_version:
                results.portal_version = value[:20]
        for case in element.iter("testcase"):
            reqs = [
                rid.strip()
                for prop in case.findall("properties/property")
                if prop.get("name") == "req"
                for rid in prop.get("value", "").split(",")
                if rid.strip()
            ]
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            elif case.find("skipped") is not None:
                outcome = "skipped"
            else:
                outcome = "passed"
            test = f"{case.get('classname', '')}::{case.get('name', '')}"
            results.cases.append({"test": test[:300], "suite": suite[:40], "outcome": outcome, "reqs": reqs})
    results.suites.append(suite)
    return results


def read_files(paths: Iterable[Path | str]) -> Results:
    results = Results()
    for path in paths:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReportError(f"{path}: cannot be read ({exc.strerror}).") from None
        read_junit(data, path.stem, results)
    return results


@dataclass
class Row:
    id: str
    area: str
    text: str
    tests: list[str] = field(default_factory=list)  # distinct test names
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failing_tests: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed:
            return "failing"
        if self.passed:
            return "passing"
        return "not_run" if self.tests else "untested"

    @property
    def status_text(self) -> str:
        return _(STATUS_TEXT[self.status])

    @property
    def gap(self) -> bool:
        return self.status != "passing"


def matrix(cases: list[dict]) -> list[Row]:
    rows = {r["id"]: Row(r["id"], r["area"], r["text"]) for r in requirements()}
    for case in cases:
        for rid in case["reqs"]:
            row = rows.get(rid)
            if row is None:
                continue
            if case["test"] not in row.tests:
                row.tests.append(case["test"])
            setattr(row, case["outcome"], getattr(row, case["outcome"]) + 1)
            if case["outcome"] == "failed" and case["test"] not in row.failing_tests:
                row.failing_tests.append(case["test"])
    return list(rows.values())


def summary(rows: list[Row]) -> dict[str, int]:
    counts = {status: 0 for status in STATUS_TEXT}
    for row in rows:
        counts[row.status] += 1
    return counts


CSV_HEADER = [
    "requirement",
    "area",
    "text",
    "status",
    "tests",
    "passed",
    "failed",
    "skipped",
    "failing_tests",
]


def csv_text(rows: list[Row], *, commit: str, run_version: str, portal_version: str) -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"# Traceability matrix of Plant Change Control v{portal_version}"])
    writer.writerow([f"# tests of commit {commit or 'unknown'} (portal v{run_version or 'unknown'})"])
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            [
                neutralise(str(cell))
                for cell in (
                    row.id,
                    row.area,
                    row.text,
                    STATUS_TEXT[row.status],
                    len(row.tests),
                    row.passed,
                    row.failed,
                    row.skipped,
                    " | ".join(row.failing_tests),
                )
            ]
        )
    return out.getvalue()


def pdf_bytes(
    rows: list[Row], *, commit: str, run_version: str, portal_version: str, generated: str
) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    from reports.pdf import render, styles
    from reports.pdf import text as escape

    s = styles()
    counts = summary(rows)
    story = [
        Paragraph(escape(_("Traceability matrix")), s["Title"]),
        Paragraph(
            escape(
                _(
                    "Plant Change Control v%(version)s; tests of commit %(commit)s (portal v%(run_version)s); "
                    "generated %(generated)s."
                )
                % {
                    "version": portal_version,
                    "commit": commit or _("unknown"),
                    "run_version": run_version or _("unknown"),
                    "generated": generated,
                }
            ),
            s["small"],
        ),
        Paragraph(
            escape(
                _(
                    "%(requirements)s requirements: %(passing)s passing, %(failing)s failing, "
                    "%(not_run)s not run, %(untested)s without a test."
                )
                % {"requirements": len(rows), **counts}
            ),
            s["BodyText"],
        ),
        Spacer(1, 3 * mm),
    ]
    gaps = [row for row in rows if row.gap]
    story.append(Paragraph(escape(_("Gaps: requirements without a passing test")), s["Heading2"]))
    if gaps:
        for row in gaps:
            if row.failing_tests:
                line = _("%(id)s (%(status)s): %(text)s — failing: %(tests)s") % {
                    "id": row.id,
                    "status": row.status_text,
                    "text": row.text,
                    "tests": ", ".join(row.failing_tests[:5]),
                }
            else:
                line = f"{row.id} ({row.status_text}): {row.text}"
            story.append(Paragraph(escape(line), s["small"]))
    else:
        story.append(Paragraph(escape(_("None: every requirement has a passing test.")), s["small"]))
    story += [Spacer(1, 3 * mm), Paragraph(escape(_("Every requirement")), s["Heading2"])]
    data = [
        [
            Paragraph(f"<b>{escape(h)}</b>", s["small"])
            for h in ("ID", _("Requirement"), _("Tests"), _("Passed"), _("Failed"), _("Status"))
        ]
    ]
    for row in rows:
        data.append(
            [
                Paragraph(row.id, s["small"]),
                Paragraph(escape(row.text), s["small"]),
                Paragraph(str(len(row.tests)), s["small"]),
                Paragraph(str(row.passed), s["small"]),
                Paragraph(str(row.failed), s["small"]),
                Paragraph(escape(row.status_text), s["small"]),
            ]
        )
    table = Table(data, colWidths=[w * mm for w in (12, 104, 14, 15, 14, 23)], repeatRows=1)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9aa5b1")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    for index, row in enumerate(rows, start=1):
        if row.gap:
            style.append(("BACKGROUND", (0, index), (-1, index), colors.HexColor("#fdecea")))
    table.setStyle(TableStyle(style))
    story.append(table)
    return render(_("Traceability matrix"), story)
