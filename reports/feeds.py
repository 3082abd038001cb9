"""The change calendar as an ICS feed per site, and the per-user feed token.

Calendar clients (Outlook, Google Calendar) subscribe to a URL and fetch it without a session, so
the feed is authenticated by a token in the query string. Only its SHA-256 is stored; the token is
shown once when it is made, and making a new one replaces the old. The feed shows what the user may
see: a site outside their roles is a 404, exactly like an unknown token.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta

import icalendar
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from audit.services import record
from core import clock, links
from deployments.models import Deployment
from deployments.states import ON_CALENDAR, TERMINAL
from environments import access, calendar
from environments.models import CalendarFeedToken, Freeze, Site
from environments.windows import site_rules

PAST_DAYS = 30
FUTURE_DAYS = 180
PRODID = "-//Plant Change Control//Change calendar//EN"


# --- The token ----------------------------------------------------------------------------------
def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user) -> str:
    """Make the user's feed token (replacing any earlier one) and return it; it is never stored."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        existing = CalendarFeedToken.objects.select_for_update().filter(user=user).first()
        if existing is None:
            item = CalendarFeedToken.objects.create(
                user=user, token_hash=hash_token(token), created_at=clock.now()
            )
            action, before = "environments.feed_token.created", None
        else:
            before = {"created_at": existing.created_at}
            existing.token_hash, existing.created_at = hash_token(token), clock.now()
            existing.save(update_fields=["token_hash", "created_at"])
            item, action = existing, "environments.feed_token.regenerated"
        # The audit trail records that a token was made, never the token or its hash (C4).
        record(action, item, actor=user, before=before, after={"created_at": item.created_at})
    return token


def user_for_token(token: str):
    """The active user a feed token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    item = CalendarFeedToken.objects.select_related("user").filter(token_hash=hash_token(token)).first()
    if item is None or not item.user.is_active:
        return None
    return item.user


def feed_url(site: Site, token: str | None = None, request=None) -> str:
    url = links.absolute_url(reverse("environments:calendar_ics", args=[site.code]), request)
    return f"{url}?token={token}" if token else url


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def feed_page(request):
    """Shows whether the user has a feed token; POST makes a new one and shows it this once."""
    token = issue_token(request.user) if request.method == "POST" else None
    existing = CalendarFeedToken.objects.filter(user=request.user).first()
    sites = list(access.visible_sites(request.user))
    return render(
        request,
        "environments/feed.html",
        {
            "token": token,
            "existing": existing,
            "feeds": [{"site": site, "url": feed_url(site, token, request)} for site in sites],
        },
    )


# --- The feed -----------------------------------------------------------------------------------
def _uid(kind: str, key: str) -> str:
    return f"{kind}-{key}@{links.stable_host()}"


def _event(
    uid: str,
    summary: str,
    start: datetime | date,
    end: datetime | date,
    stamp: datetime,
    description: str = "",
    url: str = "",
    categories: str = "",
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("summary", summary)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("transp", "OPAQUE" if isinstance(start, datetime) else "TRANSPARENT")
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
    if categories:
        event.add("categories", [categories])
    return event


def _day_runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive dates as (first, last) runs."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(first, last) for first, last in runs]


def build_feed(site: Site, now: datetime) -> icalendar.Calendar:
    lo, hi = now - timedelta(days=PAST_DAYS), now + timedelta(days=FUTURE_DAYS)
    tz = site.zone
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", _("%(site)s change calendar") % {"site": site.code})
    cal.add(
        "x-wr-caldesc",
        _("Scheduled deployments, freezes, quarter closes and holidays of %(site)s") % {"site": site.name},
    )
    cal.add("x-wr-timezone", site.timezone)
    cal.add("x-published-ttl", "PT1H")
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})

    deployments = (
        Deployment.objects.filter(
            environment__site=site,
            state__in=ON_CALENDAR,
            scheduled_start__lt=hi,
            scheduled_end__gt=lo,
        )
        .select_related("rfc", "environment__site")
        .order_by("scheduled_start")
    )
    for deployment in deployments:
        rfc = deployment.rfc
        emergency = deployment.emergency or rfc.emergency
        link = links.absolute_url(reverse("releases:detail", args=[rfc.uuid]))
        local = deployment.scheduled_start.astimezone(tz)
        description = "\n".join(
            [
                _("Environment: %(environment)s") % {"environment": deployment.environment},
                _("State: %(state)s") % {"state": deployment.get_state_display()},
                _("Local start: %(start)s") % {"start": f"{local:%Y-%m-%d %H:%M} {local.tzname()}"},
                _("Duration: %(minutes)s min (the slot includes the smoke test and rollback budget)")
                % {"minutes": deployment.duration_minutes},
                *([_("EMERGENCY CHANGE")] if emergency else []),
                link,
            ]
        )
        start, end = deployment.calendar_span
        outcome = f" — {deployment.get_state_display().lower()}" if deployment.state in TERMINAL else ""
        cal.add_component(
            _event(
                _uid("deployment", str(deployment.uuid)),
                (_("[EMERGENCY] %(rfc)s") if emergency else "%(rfc)s")
                % {"rfc": f"{rfc.number} {rfc.title}{outcome}"},
                start,
                end,
                now,
                description,
                link,
                _("Emergency deployment") if emergency else _("Deployment"),
            )
        )

    freezes = Freeze.objects.filter(Q(site=site) | Q(site__isnull=True), starts_at__lt=hi, ends_at__gt=lo)
    for freeze in freezes:
        scope = _("every site") if freeze.site_id is None else site.code
        cal.add_component(
            _event(
                _uid("freeze", str(freeze.pk)),
                _("Freeze: %(name)s") % {"name": freeze.name},
                freeze.starts_at,
                freeze.ends_at,
                now,
                "\n".join(
                    filter(None, [freeze.reason, _("No deployments to PROD (%(scope)s).") % {"scope": scope}])
                ),
                categories=_("Freeze"),
            )
        )

    # Quarter closes and holidays are dates of the site: all-day events on its local calendar.
    rules = site_rules(site, since=lo)
    quarter_days, holidays = [], []
    for block in calendar.blocks_between(rules, lo, hi):
        if block.kind == "quarter":
            quarter_days.append(block.start.astimezone(tz).date())
        elif block.kind == "holiday":
            holidays.append(
                (block.start.astimezone(tz).date(), block.reason.removeprefix("public holiday: "))
            )
    for first, last in _day_runs(quarter_days):
        quarter = (last.month - 1) // 3 + 1
        cal.add_component(
            _event(
                _uid("quarter", f"{site.code}-{last.year}Q{quarter}"),
                _("Freeze: Q%(quarter)s %(year)s close") % {"quarter": quarter, "year": last.year},
                first,
                last + timedelta(days=1),
                now,
                _("The last %(days)s days of the quarter: no deployments to PROD.")
                % {"days": rules.quarter_close_days},
                categories=_("Freeze"),
            )
        )
    for day, name in holidays:
        cal.add_component(
            _event(
                _uid("holiday", f"{site.code}-{day.isoformat()}"),
                _("Holiday: %(name)s") % {"name": name},
                day,
                day + timedelta(days=1),
                now,
                _("Public holiday at %(site)s (%(region)s): no deployments to PROD.")
                % {"site": site.code, "region": f"{site.country}-{site.subdivision}"},
                categories=_("Holiday"),
            )
        )
    return cal


@require_GET
def site_feed(request, code: str):
    """`/calendar/<code>.ics?token=…`: no session; an unknown token and a hidden site are both a 404."""
    user = user_for_token(request.GET.get("token", ""))
    if user is None:
        raise Http404("Unknown feed.")
    site = access.visible_site(user, code)
    if site is None:
        raise Http404("Unknown feed.")
    response = HttpResponse(
        build_feed(site, clock.now()).to_ical(), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'inline; filename="{site.code}-change-calendar.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
