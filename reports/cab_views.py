"""The change-advisory page: the week ahead by site and day, as a page, CSV or PDF."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core import clock
from core.version import __version__
from reports import cab


def _start(raw: str) -> tuple[datetime, str]:
    """The week's first day (UTC midnight) from ?start=YYYY-MM-DD; today when absent or unreadable."""
    today = clock.now().date()
    try:
        day = date.fromisoformat(raw[:10]) if raw else today
    except ValueError:
        return datetime.combine(today, datetime.min.time(), UTC), _(
            "Give the start as a date, e.g. 2026-12-07."
        )
    if abs((day - today).days) > 3660:
        return datetime.combine(today, datetime.min.time(), UTC), _("Pick a week within ten years of today.")
    return datetime.combine(day, datetime.min.time(), UTC), ""


@login_required
@require_GET
def cab_page(request):
    start, problem = _start(request.GET.get("start", ""))
    fmt = request.GET.get("format", "")
    stamp = f"{start:%Y-%m-%d}"
    if fmt == "csv":
        out = io.StringIO()
        with translation.override(None):  # the CSV is for programs: English whatever the reader's language
            csv.writer(out).writerows(cab.csv_rows(cab.week(request.user, start)))
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="change-advisory-{stamp}.csv"'
        return response
    rows = cab.week(request.user, start)
    if fmt == "pdf":
        response = HttpResponse(_pdf(rows, start), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="change-advisory-{stamp}.pdf"'
        return response
    sites = [(code, list(items)) for code, items in groupby(rows, key=lambda r: r.site.code)]
    return render(
        request,
        "releases/cab.html",
        {
            "start": start,
            "end": start + timedelta(days=cab.DAYS - 1),
            "previous": f"{start - timedelta(days=cab.DAYS):%Y-%m-%d}",
            "next": f"{start + timedelta(days=cab.DAYS):%Y-%m-%d}",
            "stamp": stamp,
            "sites": sites,
            "count": len(rows),
            "problem": problem,
        },
        status=400 if problem else 200,
    )


def _pdf(rows: list[cab.Row], start: datetime) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=_("Change advisory %(start)s") % {"start": f"{start:%Y-%m-%d}"},
        author="Plant Change Control",
    )
    story = [
        Paragraph(
            escape(
                _("Change advisory — PROD changes from %(start)s for %(days)s days")
                % {"start": f"{start:%Y-%m-%d}", "days": cab.DAYS}
            ),
            styles["Title"],
        ),
        Paragraph(
            escape(
                _(
                    "Plant Change Control v%(version)s, generated %(generated)s UTC; times in each site's own zone."
                )
                % {"version": __version__, "generated": f"{clock.now():%Y-%m-%d %H:%M}"}
            ),
            small,
        ),
        Spacer(1, 4 * mm),
    ]
    lines = cab.csv_rows(rows)
    header = [
        _("Site"),
        _("Day"),
        _("Time"),
        "RFC",
        _("Title"),
        _("Release"),
        _("Class"),
        _("Risk"),
        _("Model"),
        _("Conflicts"),
        _("Gates"),
    ]
    data = [[Paragraph(f"<b>{escape(h)}</b>", small) for h in header]]
    data += [[Paragraph(escape(cell), small) for cell in line] for line in lines[1:]]
    if len(data) == 1:
        data.append(
            [Paragraph(escape(_("No PROD change is booked in this week.")), small)] + [""] * (len(header) - 1)
        )
    widths = [14, 20, 26, 22, 40, 24, 18, 20, 26, 38, 25]
    table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9aa5b1")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(table)
    doc.build(story)
    return buffer.getvalue()
