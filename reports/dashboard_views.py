"""The dashboard: how change is going at a site, or across the sites a person sees, over a period.

Every figure comes from `workflow.metrics` (SQL aggregates, a constant number of queries) and links to
the RFC list filtered to the RFCs behind it. Each chart is drawn by the vendored Chart.js from the
same numbers the table under it shows; without JavaScript the tables are the dashboard.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET

from environments import access
from reports import figures
from reports.figures import figure_link, hours, percent
from workflow import metrics


def scope(request) -> tuple[list, list, str, metrics.Period, dict[str, list[str]]]:
    """The visible sites, those chosen (one, or all), the chosen code, the period, any refusal."""
    visible = list(access.visible_sites(request.user).order_by("code"))
    code = request.GET.get("site", "").strip()
    errors: dict[str, list[str]] = {}
    sites = visible
    if code:
        sites = [s for s in visible if s.code == code]
        if not sites:
            errors["site"] = [gettext("Choose one of your sites.")]
            sites, code = visible, ""
    try:
        period = metrics.period(request.GET.get("since"), request.GET.get("until"), metrics.zone_for(sites))
    except ValidationError as refused:
        errors.update(refused.message_dict)
        period = metrics.period(None, None, metrics.zone_for(sites))
    return visible, sites, code, period, errors


OUTCOME_COLOURS = (
    ("succeeded", gettext_lazy("Succeeded"), "#1f7a3a"),
    ("rolled_back", gettext_lazy("Rolled back"), "#b35c00"),
    ("failed", gettext_lazy("Failed"), "#b3261e"),
)


def outcome_series(rows: list[dict]) -> list[dict]:
    """Chart series of PROD outcomes (succeeded, rolled back, failed) over `rows`."""
    return [
        {"label": str(label), "data": [r[key] for r in rows], "color": colour}
        for key, label, colour in OUTCOME_COLOURS
    ]


@login_required
@require_GET
def dashboard_page(request):
    visible, sites, code, period, errors = scope(request)
    board = metrics.dashboard(sites, period)
    link = lambda metric: figure_link(metric, code, period)  # noqa: E731
    o = board.outcomes
    keys = figures.key_figures(board, link)
    adherence = [
        (key, label, o[key], link(key))
        for key, label in (
            ("on_time", gettext("Started on time")),
            ("late", gettext("Started late")),
            ("missed", gettext("Missed the window")),
            ("refused", gettext("Refused at the start")),
            ("cancelled", gettext("Cancelled")),
            ("to_come", gettext("Still to come")),
        )
    ]
    for row in board.approvals:
        row["href"] = link(f"approval:{row['step']}:{row['role']}")
        row["mean_text"], row["longest_text"] = hours(row["mean"]), hours(row["longest"])
    for row in board.gates:
        row["href"] = link(f"gate:{row['gate']}")
    for row in board.per_site:
        row["href"] = figure_link("started", row["code"], period)
        row["rate_text"] = percent(row["failure_rate"])
    charts = {
        "deployments": {
            "type": "bar",
            "stacked": True,
            "labels": [date_format(row["day"], "d M") for row in board.series],
            "series": outcome_series(board.series),
        },
        "adherence": {
            "type": "bar",
            "labels": [label for _, label, _, _ in adherence],
            "series": [
                {"label": gettext("Bookings"), "data": [n for _, _, n, _ in adherence], "color": "#0b4f7c"}
            ],
        },
        "approvals": {
            "type": "bar",
            "horizontal": True,
            "labels": [
                gettext("Step %(step)s: %(role)s") % {"step": r["step"], "role": r["role_label"]}
                for r in board.approvals
            ],
            "series": [
                {
                    "label": gettext("Mean hours"),
                    "data": [
                        round(r["mean"].total_seconds() / 3600, 2) if r["mean"] else 0
                        for r in board.approvals
                    ],
                    "color": "#0b4f7c",
                }
            ],
        },
        "gates": {
            "type": "bar",
            "horizontal": True,
            "labels": [r["gate"] for r in board.gates],
            "series": [
                {"label": gettext("Refusals"), "data": [r["count"] for r in board.gates], "color": "#8a5a00"}
            ],
        },
        "sites": {
            "type": "bar",
            "stacked": True,
            "labels": [r["code"] for r in board.per_site],
            "series": outcome_series(board.per_site),
        },
    }
    return render(
        request,
        "reports/dashboard.html",
        {
            "board": board,
            "sites": visible,
            "code": code,
            "period": period,
            "zone": "UTC" if len(sites) != 1 else sites[0].timezone,
            "keys": keys,
            "adherence": adherence,
            "charts": charts,
            "errors": errors,
            "bucket_label": gettext("Day") if period.bucket == "day" else gettext("Week of"),
        },
        status=400 if errors else 200,
    )
