"""Figures as people read them: durations, percentages, counts with their noun, and the dashboard's
key figures (shared by the dashboard and the managers' home page)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.urls import reverse
from django.utils.http import urlencode

from workflow import metrics


def hours(value: timedelta | None) -> str:
    """A duration for people: minutes under an hour, hours under two days, then days."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def key_figures(board: metrics.Dashboard, link: Callable[[str], str]) -> list[dict]:
    """DORA's four keys, then success, rollback, emergency and adherence: label, value, detail and the
    address of the RFCs behind each (`link(metric)`)."""
    period, o = board.period, board.outcomes
    return [
        {
            "label": "Deployment frequency",
            "value": f"{board.frequency * 7:.1f} a week",
            "detail": f"{plural(o['succeeded'], 'PROD deployment')} succeeded in {period.days} days",
            "href": link("succeeded"),
            "testid": "frequency",
        },
        {
            "label": "Lead time",
            "value": hours(board.lead_time.median),
            "detail": f"median from submission to PROD success (mean {hours(board.lead_time.mean)}, "
            f"{plural(board.lead_time.count, 'deployment')})",
            "href": link("succeeded"),
            "testid": "lead-time",
        },
        {
            "label": "Change failure rate",
            "value": percent(board.failure_rate),
            "detail": f"{o['rolled_back'] + o['failed']} of {o['started']} PROD deployments rolled back or failed",
            "href": link("started"),
            "testid": "failure-rate",
        },
        {
            "label": "Time to restore",
            "value": hours(board.restore.median),
            "detail": f"median rollback duration (mean {hours(board.restore.mean)}, "
            f"{plural(board.restore.count, 'rollback')})",
            "href": link("rolled_back"),
            "testid": "restore",
        },
        {
            "label": "Change success rate",
            "value": percent(board.success_rate),
            "detail": f"{o['succeeded']} of {o['started']} succeeded",
            "href": link("succeeded"),
            "testid": "success-rate",
        },
        {
            "label": "Rollback rate",
            "value": percent(board.rollback_rate),
            "detail": f"{o['rolled_back']} of {o['started']} rolled back",
            "href": link("rolled_back"),
            "testid": "rollback-rate",
        },
        {
            "label": "Emergency ratio",
            "value": percent(board.emergency_ratio),
            "detail": f"{board.emergencies} of {board.rfcs_submitted} RFCs submitted were emergencies",
            "href": link("emergency"),
            "testid": "emergency-ratio",
        },
        {
            "label": "Schedule adherence",
            "value": percent(board.adherence),
            "detail": f"{o['on_time']} of {o['on_time'] + o['late'] + o['missed']} bookings started on time",
            "href": link("on_time"),
            "testid": "adherence",
        },
    ]


def figure_link(metric: str, code: str, period: metrics.Period) -> str:
    params = {"metric": metric, "since": f"{period.since:%Y-%m-%d}", "until": f"{period.until:%Y-%m-%d}"}
    if code:
        params["site"] = code
    return f"{reverse('releases:list')}?{urlencode(params)}"
