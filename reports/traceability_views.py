"""The traceability matrix page for admins and auditors: the last CI run kept in the portal, as a
page, CSV and PDF (reports/traceability.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core import clock
from core.version import __version__
from environments import access
from reports import traceability
from reports.models import TraceabilityRun


@login_required
@require_GET
def traceability_page(request):
    access.require(request.user, "read_audit")
    run = TraceabilityRun.objects.select_related("imported_by").first()
    rows = traceability.matrix(run.cases if run else [])
    fmt = request.GET.get("format", "")
    kwargs = {
        "commit": run.commit if run else "",
        "run_version": run.portal_version if run else "",
        "portal_version": __version__,
    }
    stamp = f"{clock.now():%Y%m%d-%H%M}"
    if fmt == "csv":
        response = HttpResponse(traceability.csv_text(rows, **kwargs), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="traceability-{stamp}.csv"'
        return response
    if fmt == "pdf":
        generated = f"{clock.now():%Y-%m-%d %H:%M} UTC"
        response = HttpResponse(
            traceability.pdf_bytes(rows, generated=generated, **kwargs), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="traceability-{stamp}.pdf"'
        return response
    return render(
        request,
        "audit/traceability.html",
        {
            "run": run,
            "rows": rows,
            "gaps": [row for row in rows if row.gap],
            "counts": traceability.summary(rows),
            "tests": len(run.cases) if run else 0,
        },
    )
