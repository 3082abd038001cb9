"""Figures as people read them: durations, percentages, counts with their noun, and the dashboard's
key figures (shared by the dashboard and the managers' home page)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from workflow import metrics


def hours(value: timedelta | None) -> str:
    """A duration for people: minutes under an hour, hours under two days, then days."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 3600:
        return _("%(minutes)s min") % {"minutes": f"{seconds / 60:.0f}"}
    if seconds < 48 * 3600:
        return _("%(hours)s h") % {"hours": f"{seconds / 3600:.1f}"}
    return _("%(days)s days") % {"days": f"{seconds / 86400:.1f}"}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def key_figures(board: metrics.Figures, link: Callable[[str], str]) -> list[dict]:
    """DORA's four keys, then success, rollback, emergency and adherence: label, value, detail and the
    address of the RFCs behind each (`link(metric)`)."""
    period, o = board.period, board.outcomes
    return [
        {
            "label": _("Deployment frequency"),
            "value": _("%(count)s a week") % {"count": f"{board.frequency * 7:.1f}"},
            "detail": ngettext(
                "%(count)s PROD deployment succeeded in %(days)s days",
                "%(count)s PROD deployments succeeded in %(days)s days",
                o["succeeded"],
            )
            % {"count": o["succeeded"], "days": period.days},
            "href": link("succeeded"),
            "testid": "frequency",
        },
        {
            "label": _("Lead time"),
            "value": hours(board.lead_time.median),
            "detail": ngettext(
                "median from submission to PROD success (mean %(mean)s, %(count)s deployment)",
                "median from submission to PROD success (mean %(mean)s, %(count)s deployments)",
                board.lead_time.count,
            )
            % {"mean": hours(board.lead_time.mean), "count": board.lead_time.count},
            "href": link("succeeded"),
            "testid": "lead-time",
        },
        {
            "label": _("Change failure rate"),
            "value": percent(board.failure_rate),
            "detail": _("%(bad)s of %(started)s PROD deployments rolled back or failed")
            % {"bad": o["rolled_back"] + o["failed"], "started": o["started"]},
            "href": link("started"),
            "testid": "failure-rate",
        },
        {
            "label": _("Time to restore"),
            "value": hours(board.restore.median),
            "detail": ngettext(
                "median rollback duration (mean %(mean)s, %(count)s rollback)",
                "median rollback duration (mean %(mean)s, %(count)s rollbacks)",
                board.restore.count,
            )
            % {"mean": hours(board.restore.mean), "count": board.restore.count},
            "href": link("rolled_back"),
            "testid": "restore",
        },
        {
            "label": _("Change success rate"),
            "value": percent(board.success_rate),
            "detail": _("%(succeeded)s of %(started)s succeeded")
            % {"succeeded": o["succeeded"], "started": o["started"]},
            "href": link("succeeded"),
            "testid": "success-rate",
        },
        {
            "label": _("Rollback rate"),
            "value": percent(board.rollback_rate),
            "detail": _("%(rolled_back)s of %(started)s rolled back")
            % {"rolled_back": o["rolled_back"], "started": o["started"]},
            "href": link("rolled_back"),
            "testid": "rollback-rate",
        },
        {
            "label": _("Emergency ratio"),
            "value": percent(board.emergency_ratio),
            "detail": _("%(emergencies)s of %(submitted)s RFCs submitted were emergencies")
            % {"emergencies": board.emergencies, "submitted": board.rfcs_submitted},
            "href": link("emergency"),
            "testid": "emergency-ratio",
        },
        {
            "label": _("Schedule adherence"),
            "value": percent(board.adherence),
            "detail": _("%(on_time)s of %(booked)s bookings started on time")
            % {"on_time": o["on_time"], "booked": o["on_time"] + o["late"] + o["missed"]},
            "href": link("on_time"),
            "testid": "adherence",
        },
    ]


def figure_link(metric: str, code: str, period: metrics.Period) -> str:
    params = {"metric": metric, "since": f"{period.since:%Y-%m-%d}", "until": f"{period.until:%Y-%m-%d}"}
    if code:
        params["site"] = code
    return f"{reverse('releases:list')}?{urlencode(params)}"
