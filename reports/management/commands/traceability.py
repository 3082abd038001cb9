"""The traceability matrix from a CI run's JUnit XML reports (reports/traceability.py).

    manage.py traceability --junit test-artifacts/junit-embedded.xml --junit test-artifacts/junit-services.xml \
        [--csv test-artifacts/traceability.csv] [--pdf test-artifacts/traceability.pdf] [--save --as auditor]

Without --junit it draws the matrix from the last run kept in the portal. --save keeps the run (the
portal's page shows the last one kept), audited as the user named by --as. Exits 1 when a
requirement has no passing test and --strict is given.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.services import record
from core import clock
from core.version import __version__
from reports import traceability
from reports.models import TraceabilityRun


class Command(BaseCommand):
    help = "Build the traceability matrix (requirement → tests → results → gaps) from JUnit XML reports."

    def add_arguments(self, parser):
        parser.add_argument("--junit", action="append", default=[], help="a JUnit XML report (repeatable)")
        parser.add_argument("--csv", help="write the matrix as CSV here")
        parser.add_argument("--pdf", help="write the matrix as PDF here")
        parser.add_argument("--save", action="store_true", help="keep the run for the portal's page")
        parser.add_argument("--as", dest="username", help="who imports it (with --save)")
        parser.add_argument("--strict", action="store_true", help="exit 1 when a requirement has a gap")

    def handle(self, *args, **options):
        if options["junit"]:
            try:
                results = traceability.read_files(options["junit"])
            except traceability.ReportError as exc:
                raise CommandError(str(exc)) from None
            commit, version, cases, suites = (
                results.commit,
                results.portal_version,
                results.cases,
                results.suites,
            )
        else:
            run = TraceabilityRun.objects.first()
            if run is None:
                raise CommandError("No run is kept yet: give --junit reports.")
            commit, version, cases, suites = run.commit, run.portal_version, run.cases, run.suites
        rows = traceability.matrix(cases)
        counts = traceability.summary(rows)
        if options["save"]:
            user = None
            if options["username"]:
                user = get_user_model().objects.filter(username=options["username"]).first()
                if user is None:
                    raise CommandError(f"There is no user {options['username']!r}.")
            run = TraceabilityRun.objects.create(
                imported_by=user, commit=commit, portal_version=version, suites=suites, cases=cases
            )
            record(
                "reports.traceability.imported",
                actor=user,
                actor_name=None if user else "system",
                object_type="reports.traceabilityrun",
                object_id=str(run.pk),
                after={
                    "commit": commit,
                    "portal_version": version,
                    "suites": suites,
                    "tests": len(cases),
                    **counts,
                },
            )
        kwargs = {"commit": commit, "run_version": version, "portal_version": __version__}
        if options["csv"]:
            Path(options["csv"]).write_text(traceability.csv_text(rows, **kwargs), encoding="utf-8")
        if options["pdf"]:
            generated = f"{clock.now():%Y-%m-%d %H:%M} UTC"
            Path(options["pdf"]).write_bytes(traceability.pdf_bytes(rows, generated=generated, **kwargs))
        gaps = [row for row in rows if row.gap]
        self.stdout.write(
            f"{len(rows)} requirements, {len(cases)} test results from {', '.join(suites) or 'no report'}: "
            f"{counts['passing']} passing, {counts['failing']} failing, {counts['not_run']} not run, "
            f"{counts['untested']} without a test."
        )
        for row in gaps:
            self.stdout.write(f"  gap: {row.id} ({row.status_text}) {row.text[:90]}")
        if options["strict"] and gaps:
            raise CommandError(f"{len(gaps)} requirement(s) without a passing test.")
