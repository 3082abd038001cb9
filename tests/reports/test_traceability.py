"""The traceability matrix (issue 17 item 4): built from a small fixture suite run by a real pytest
with the traceability plugin — one requirement passing, one failing, one whose only test is skipped
and the rest without a test — imported by the command, exported as CSV and PDF (checked as text and
as an image), and shown to auditors."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEvent
from core.version import __version__
from reports import traceability
from reports.models import TraceabilityRun
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

FIXTURE_SUITE = '''
"""A fixture suite for the traceability matrix (not one of the portal's tests)."""
import pytest


@pytest.mark.req("W1", "W2")
def test_window_rule():
    assert True


def test_a_booking_at_a_shift_handover_is_refused():
    """A slot at 14:00 is refused (W3)."""
    assert 1 + 1 == 3


def test_same_artifact_everywhere_x5():
    pytest.skip("no artifact store in the fixture")


class TestApprovals:
    """Approvals by class (A1)."""

    @pytest.mark.parametrize("n", [1, 2])
    def test_patch_needs_the_it_manager(self, n):
        assert n
'''


@pytest.fixture(scope="module")
def junit(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fixture-suite")
    (folder / "test_fixture_suite.py").write_text(FIXTURE_SUITE, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    report = folder / "junit.xml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.traceability_plugin",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-c",
            str(folder / "pytest.ini"),
            "--rootdir",
            str(folder),
            f"--junitxml={report}",
            "-q",
            str(folder / "test_fixture_suite.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # one test fails, on purpose
    assert "1 failed, 3 passed, 1 skipped" in done.stdout, done.stdout
    return report


def test_the_matrix_of_the_fixture_suite(junit):
    results = traceability.read_files([junit])
    assert results.portal_version == __version__
    assert re.fullmatch(r"[0-9a-f]{40}|", results.commit)
    rows = {row.id: row for row in traceability.matrix(results.cases)}
    assert len(rows) == 43
    assert (rows["W1"].status, rows["W2"].status) == ("passing", "passing")
    assert rows["W3"].status == "failing"
    assert rows["W3"].failing_tests == ["test_fixture_suite::test_a_booking_at_a_shift_handover_is_refused"]
    assert rows["X5"].status == "not_run" and rows["X5"].gap  # named only by the test's name; skipped
    assert rows["A1"].status == "passing" and rows["A1"].passed == 2  # the class docstring, both parameters
    assert rows["E2"].status == "untested" and rows["E2"].gap
    counts = traceability.summary(list(rows.values()))
    assert counts == {"passing": 3, "failing": 1, "not_run": 1, "untested": 38}


def test_the_command_keeps_the_run_and_writes_csv_and_pdf(junit, tmp_path, people):
    out_csv, out_pdf = tmp_path / "matrix.csv", tmp_path / "matrix.pdf"
    stdout = io.StringIO()
    call_command(
        "traceability",
        junit=[str(junit)],
        csv=str(out_csv),
        pdf=str(out_pdf),
        save=True,
        username="auditor",
        stdout=stdout,
    )
    assert "3 passing, 1 failing, 1 not run, 38 without a test" in stdout.getvalue()
    assert "gap: W3 (Failing)" in stdout.getvalue()
    run = TraceabilityRun.objects.get()
    assert run.imported_by == people["auditor"] and len(run.cases) == 5
    event = AuditEvent.objects.get(action="reports.traceability.imported")
    assert event.actor_name == "auditor" and event.after["failing"] == 1

    lines = out_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"# Traceability matrix of Plant Change Control v{__version__}"
    table = {row["requirement"]: row for row in csv.DictReader(lines[2:])}
    assert table["W3"]["status"] == "Failing" and table["W3"]["failed"] == "1"
    assert table["E2"]["status"] == "No test"

    text = subprocess.run(
        ["pdftotext", "-layout", str(out_pdf), "-"], capture_output=True, text=True, check=True
    )
    assert "Traceability matrix" in text.stdout and f"v{__version__}" in text.stdout
    assert "W3 (Failing)" in text.stdout and "E2 (No test)" in text.stdout
    png = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(out_pdf), str(png)], check=True)
    image = next(tmp_path.glob("page*.png"))
    assert image.stat().st_size > 3000


def test_strict_fails_on_gaps_and_a_bad_report_is_refused(junit, tmp_path):
    with pytest.raises(CommandError, match="without a passing test"):
        call_command("traceability", junit=[str(junit)], strict=True, stdout=io.StringIO())
    bad = tmp_path / "bad.xml"
    bad.write_text("not xml at all", encoding="utf-8")
    with pytest.raises(CommandError, match="not XML"):
        call_command("traceability", junit=[str(bad)], stdout=io.StringIO())
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>')
    with pytest.raises(CommandError, match="no DTD or entities"):
        call_command("traceability", junit=[str(bomb)], stdout=io.StringIO())
    with pytest.raises(CommandError, match="No run is kept yet"):
        call_command("traceability", stdout=io.StringIO())
    assert not TraceabilityRun.objects.exists()


def test_auditors_see_the_matrix_and_its_gaps(junit, people):
    call_command("traceability", junit=[str(junit)], save=True, stdout=io.StringIO())
    page = client_for(people["auditor"]).get(reverse("audit:traceability"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "43: 3 passing, 1 failing, 1 not run, 38 without a test" in html
    gaps = html[html.index('data-testid="trace-gaps"') :]
    assert "W3" in gaps and "test_a_booking_at_a_shift_handover_is_refused" in gaps
    pdf = client_for(people["auditor"]).get(reverse("audit:traceability") + "?format=pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    exported = client_for(people["admin"]).get(reverse("audit:traceability") + "?format=csv")
    assert "W3" in exported.content.decode()
    assert client_for(people["dev"]).get(reverse("audit:traceability")).status_code == 403


def test_without_a_run_the_page_says_how_to_import_one(people):
    html = client_for(people["auditor"]).get(reverse("audit:traceability")).content.decode()
    assert "No test run is kept yet" in html and html.count('data-testid="trace-row-') == 43


def test_the_portals_own_suite_names_every_requirement_somewhere():
    """Every requirement's ID appears in some test module of the portal's own suite."""
    sys.path.insert(0, str(ROOT))
    from tests import traceability_plugin

    ids = traceability_plugin.known_ids()
    named = set()
    pattern = traceability_plugin._ID
    for path in (ROOT / "tests").rglob("test_*.py"):
        named.update(pattern.findall(path.read_text(encoding="utf-8")))
    assert sorted(ids - named, key=traceability_plugin._order) == []
    assert shutil.which("pdftotext")
