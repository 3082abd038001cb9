"""The plant calendar from the database: a site's rows become `calendar.Rules`.

`rules_for()` is what the scheduler, the API, the calendar page and the worker ask; the
decisions themselves are the pure functions in `environments.calendar`.
"""

from __future__ import annotations

from datetime import datetime, time

from django.db.models import Q

from environments import calendar
from environments.models import (
    DEFAULT_HANDOVERS,
    DEFAULT_WINDOWS,
    DeploymentWindow,
    Environment,
    Freeze,
    ShiftHandover,
    Site,
)


def _time(value: str) -> time:
    return time.fromisoformat(value)


def ensure_default_calendar(site: Site) -> None:
    """A new site starts with the plant's usual calendar (W1–W3); admins edit it afterwards."""
    if not site.windows.exists():
        DeploymentWindow.objects.bulk_create(
            [
                DeploymentWindow(site=site, weekday=day, starts=_time(start), ends=_time(end))
                for day, start, end in DEFAULT_WINDOWS
            ]
        )
    if not site.handovers.exists():
        ShiftHandover.objects.bulk_create(
            [ShiftHandover(site=site, at=_time(at)) for at in DEFAULT_HANDOVERS]
        )


def site_rules(
    site: Site,
    *,
    enforced: bool = True,
    smoke_test_minutes: int = 15,
    rollback_budget_minutes: int = 15,
    since: datetime | None = None,
) -> calendar.Rules:
    freezes = Freeze.objects.filter(Q(site=site) | Q(site__isnull=True))
    if since is not None:
        freezes = freezes.filter(ends_at__gt=since)
    return calendar.Rules(
        timezone=site.timezone,
        enforced=enforced,
        windows=tuple(calendar.Window(w.weekday, w.starts, w.ends) for w in site.windows.all()),
        handovers=tuple(calendar.Handover(h.at, h.buffer_minutes) for h in site.handovers.all()),
        block_fridays=site.block_fridays,
        quarter_close_days=site.quarter_close_days,
        freezes=tuple(calendar.Freeze(f.name, f.starts_at, f.ends_at, f.reason) for f in freezes),
        holiday_country=site.country,
        holiday_subdivision=site.subdivision,
        smoke_test_minutes=smoke_test_minutes,
        rollback_budget_minutes=rollback_budget_minutes,
    )


def rules_for(environment: Environment, since: datetime | None = None) -> calendar.Rules:
    """The calendar that governs deployments to `environment` (DEV and UAT are free unless enforced)."""
    return site_rules(
        environment.site,
        enforced=environment.windows_enforced,
        smoke_test_minutes=environment.smoke_test_minutes,
        rollback_budget_minutes=environment.rollback_budget_minutes,
        since=since,
    )
