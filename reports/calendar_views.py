"""The change calendar page: a week or a month of one site's calendar, or of every visible site.

The decisions come from `environments.calendar` (windows, blocks, free intervals) on the rules
`windows.site_rules()` builds; this module only lays them out by day. Queries do not grow with the
number of days or deployments: one for the sites (windows and handovers prefetched), one for the
freezes of each site (inside `site_rules`), one for every deployment in range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.http import urlencode
from django.utils.translation import gettext, gettext_lazy, pgettext

from core import clock, inputs
from deployments.models import Deployment
from deployments.states import ON_CALENDAR
from environments import access, calendar
from environments.models import Site
from environments.windows import site_rules

VIEWS = ("week", "month")
WHOLE_DAY_KINDS = ("friday", "quarter", "holiday")
# Order inside a day: whole-day blocks first, then by start time; at the same time a block
# before a window before a deployment, so the reason is read before what it affects.
KIND_ORDER = {
    "holiday": 0,
    "quarter": 1,
    "friday": 2,
    "freeze": 3,
    "handover": 4,
    "window": 5,
    "deployment": 6,
}
LEGEND = [
    ("window", gettext_lazy("Deployment window")),
    ("handover", gettext_lazy("Shift handover (with buffer)")),
    ("deployment", gettext_lazy("Scheduled deployment")),
    ("emergency", gettext_lazy("Emergency change")),
    ("freeze", gettext_lazy("Freeze")),
    ("holiday", gettext_lazy("Public holiday")),
    ("quarter", gettext_lazy("Quarter close")),
    ("friday", gettext_lazy("Friday, no deployments")),
]


@dataclass
class Entry:
    kind: str
    site: Site
    start: datetime  # UTC
    end: datetime
    title: str
    when: str  # the time label in the zone the entry is read in
    detail: str = ""
    url: str = ""
    number: str = ""
    tier: str = ""
    emergency: bool = False
    state: str = ""
    all_day: bool = False
    blocked: bool = False  # a window no deployment may use (a freeze, a holiday, the quarter close)
    open_label: str = ""  # what is left of a window once handovers are cut out

    @property
    def sort_key(self):
        return (not self.all_day, self.start, KIND_ORDER.get(self.kind, 9), self.site.code)


@dataclass
class Day:
    day: date
    today: bool
    in_period: bool
    entries: list[Entry] = field(default_factory=list)
    blocked_reasons: list[str] = field(default_factory=list)
    blocked: bool = False

    @property
    def compact(self) -> dict[str, list[Entry]]:
        """Month view: windows and handovers as short chips, everything else as lines."""
        groups: dict[str, list[Entry]] = {"lines": [], "windows": [], "handovers": []}
        for entry in self.entries:
            if entry.kind == "window":
                groups["windows"].append(entry)
            elif entry.kind == "handover":
                groups["handovers"].append(entry)
            else:
                groups["lines"].append(entry)
        return groups


def _hm(value: datetime, tz: ZoneInfo) -> str:
    return f"{value.astimezone(tz):%H:%M}"


def _zone_abbr(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).tzname() or str(tz)


def _span_label(
    start: datetime, end: datetime, tz: ZoneInfo, *, with_zone: bool, shown_in: ZoneInfo | None = None
) -> str:
    """ "09:00–11:00" in the site's zone; across sites with the zone, and the local weekday when the
    site's date is not the (UTC) date the entry is listed under."""
    label = f"{_hm(start, tz)}–{_hm(end, tz)}"
    if start.astimezone(tz).date() != end.astimezone(tz).date():
        label = f"{_hm(start, tz)}–{date_format(end.astimezone(tz), 'D')} {_hm(end, tz)}"
    if shown_in is not None and start.astimezone(tz).date() != start.astimezone(shown_in).date():
        label = f"{date_format(start.astimezone(tz), 'D')} {label}"
    return f"{label} {_zone_abbr(start, tz)}" if with_zone else label


def _period(view: str, anchor: date) -> tuple[date, date, date, date]:
    """(first shown, last shown, previous anchor, next anchor); a month is padded to whole weeks."""
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        return first, first + timedelta(days=6), first - timedelta(days=7), first + timedelta(days=7)
    month_first = anchor.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    prev_month = (month_first - timedelta(days=1)).replace(day=1)
    month_last = next_month - timedelta(days=1)
    first = month_first - timedelta(days=month_first.weekday())
    last = month_last + timedelta(days=6 - month_last.weekday())
    return first, last, prev_month, next_month


def _local_days_of(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """The dates in `tz` that [start, end) touches."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date() if end > start else first
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _covers(intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    return any(lo <= start and hi >= end for lo, hi in intervals)


def _site_entries(
    site: Site, rules: calendar.Rules, lo: datetime, hi: datetime, display_tz: ZoneInfo, *, with_zone: bool
) -> tuple[list[tuple[date, Entry]], dict[date, list[str]]]:
    """Every window, handover and block of one site in [lo, hi), each with the display date(s) it goes on.

    Entries are bucketed by their date in `display_tz` (the site's zone, or UTC across sites) and
    always labelled in the site's own local time.

    Whole-day blocks (Friday, quarter close, holiday) are dates of the site: they go on the site's
    local date, also in the all-sites view. Returns the entries and, per date, why the site's whole
    day is blocked.
    """
    tz = site.zone
    placed: list[tuple[date, Entry]] = []
    whole_day: dict[date, list[str]] = {}
    blocks = calendar.blocks_between(rules, lo, hi)
    # Blocks that close a window outright; handovers only trim it (shown as "open 14:30–16:00").
    closing = [(b.start, b.end) for b in blocks if b.kind != "handover"]
    free = calendar.free_intervals(rules, lo, hi)

    for block in blocks:
        if block.kind in WHOLE_DAY_KINDS:
            local_day = block.start.astimezone(tz).date()
            if block.kind == "friday":
                title = gettext("Friday: no deployments")
            elif block.kind == "quarter":
                title = gettext("Q%(quarter)s close (last %(days)s days of the quarter)") % {
                    "quarter": (local_day.month - 1) // 3 + 1,
                    "days": rules.quarter_close_days,
                }
            else:
                title = block.reason.removeprefix("public holiday: ")
            whole_day.setdefault(local_day, []).append(title)
            placed.append(
                (
                    local_day,
                    Entry(
                        block.kind,
                        site,
                        block.start,
                        block.end,
                        title,
                        gettext("all day"),
                        all_day=True,
                        detail=block.label or block.reason,
                    ),
                )
            )
        elif block.kind == "handover":
            moment = block.start + (block.end - block.start) / 2
            title = gettext("Shift handover %(at)s") % {"at": _hm(moment, tz)}
            when = _span_label(block.start, block.end, tz, with_zone=with_zone, shown_in=display_tz)
            placed.append(
                (
                    block.start.astimezone(display_tz).date(),
                    Entry(
                        "handover",
                        site,
                        block.start,
                        block.end,
                        title,
                        when,
                        detail=block.label or block.reason,
                    ),
                )
            )
        else:  # a one-off freeze, possibly over many days: on each day it touches
            freeze = next(
                (
                    f
                    for f in rules.freezes
                    if f.start == block.start and f.end == block.end and f"freeze: {f.name}" == block.reason
                ),
                None,
            )
            reason = freeze.reason if freeze else ""
            for shown_day in _local_days_of(max(block.start, lo), min(block.end, hi), display_tz):
                day_lo, day_hi = calendar.day_bounds(shown_day, display_tz)
                all_day = block.start <= day_lo and block.end >= day_hi
                zone = f" {_zone_abbr(block.start, tz)}" if with_zone else ""
                if all_day:
                    when = gettext("all day")
                elif block.start >= day_lo and block.end <= day_hi:
                    when = _span_label(block.start, block.end, tz, with_zone=with_zone, shown_in=display_tz)
                elif block.start >= day_lo:
                    when = gettext("from %(time)s") % {"time": f"{_hm(block.start, tz)}{zone}"}
                else:
                    when = gettext("until %(time)s") % {"time": f"{_hm(block.end, tz)}{zone}"}
                if all_day and display_tz == tz:
                    whole_day.setdefault(shown_day, []).append((block.label or block.reason).capitalize())
                placed.append(
                    (
                        shown_day,
                        Entry(
                            "freeze",
                            site,
                            block.start,
                            block.end,
                            block.reason.removeprefix("freeze: "),
                            when,
                            detail=reason,
                            all_day=all_day,
                        ),
                    )
                )

    for w_start, w_end, _window in calendar.windows_between(rules, lo, hi):
        entry = Entry(
            "window",
            site,
            w_start,
            w_end,
            gettext("Deployment window"),
            _span_label(w_start, w_end, tz, with_zone=with_zone, shown_in=display_tz),
        )
        entry.blocked = any(b_lo < w_end and b_hi > w_start for b_lo, b_hi in closing)
        if not entry.blocked:
            open_spans = [
                (max(f_lo, w_start), min(f_hi, w_end))
                for f_lo, f_hi in free
                if f_lo < w_end and f_hi > w_start
            ]
            if not open_spans:
                entry.blocked = True
            elif not _covers(open_spans, w_start, w_end):
                entry.open_label = ", ".join(_span_label(a, b, tz, with_zone=False) for a, b in open_spans)
        placed.append((w_start.astimezone(display_tz).date(), entry))
    return placed, whole_day


def _deployment_entry(deployment: Deployment, display_tz: ZoneInfo, *, with_zone: bool) -> Entry:
    rfc = deployment.rfc
    env = deployment.environment
    tz = env.site.zone
    start, end = deployment.calendar_span
    return Entry(
        "deployment",
        env.site,
        start,
        end,
        rfc.title,
        # Across sites (with_zone) the entry stands on its site's own local day: no weekday to add.
        _span_label(start, end, tz, with_zone=with_zone, shown_in=tz if with_zone else display_tz),
        url=reverse("releases:detail", args=[rfc.uuid]),
        number=rfc.number,
        tier=env.tier,
        emergency=deployment.emergency or rfc.emergency,
        state=deployment.get_state_display(),
        detail=gettext("%(environment)s · %(minutes)s min + smoke test + rollback budget")
        % {"environment": env, "minutes": deployment.duration_minutes},
    )


def _parse_date(value: str | None) -> date | None:
    """The day the calendar shows: none given is today; a day that is no date, or is outside the
    years the portal plans in, is bad input (400)."""
    return inputs.parse_date(value, "date") if value else None


@login_required
def calendar_page(request, code: str | None = None):
    # One query for the sites, two for their windows and handovers, whatever the page shows.
    visible = list(access.visible_sites(request.user).prefetch_related("windows", "handovers"))
    if code is not None:
        site = next((each for each in visible if each.code == code), None)
        if site is None:
            raise Http404("No such site.")  # or one the user may not see: the same answer
        sites = [site]
        display_tz = site.zone
    else:
        sites = visible
        site = None
        display_tz = ZoneInfo("UTC")
    all_sites = site is None

    view = request.GET.get("view") if request.GET.get("view") in VIEWS else "week"
    today = clock.now().astimezone(display_tz).date()
    anchor = _parse_date(request.GET.get("date")) or today
    first, last, prev_anchor, next_anchor = _period(view, anchor)
    lo = calendar.day_bounds(first, display_tz)[0]
    hi = calendar.day_bounds(last + timedelta(days=1), display_tz)[0]

    days = {
        first + timedelta(days=n): Day(
            first + timedelta(days=n),
            first + timedelta(days=n) == today,
            view == "week" or (first + timedelta(days=n)).month == anchor.month,
        )
        for n in range((last - first).days + 1)
    }
    blocked_by_site: dict[date, dict[str, list[str]]] = {}
    for each in sites:
        # Across sites each site's windows and blocks stand on its own local days (labelled with its
        # zone); a day early and late, so the edge days of the period are whole in every zone.
        site_tz = each.zone if all_sites else display_tz
        margin = timedelta(days=1) if all_sites else timedelta(0)
        rules = site_rules(each, since=lo - margin)
        placed, whole_day = _site_entries(each, rules, lo - margin, hi + margin, site_tz, with_zone=all_sites)
        for shown_day, entry in placed:
            if shown_day in days:
                days[shown_day].entries.append(entry)
        for shown_day, reasons in whole_day.items():
            blocked_by_site.setdefault(shown_day, {})[each.code] = reasons

    deployments = (
        Deployment.objects.filter(
            environment__site__in=[each.pk for each in sites],
            state__in=ON_CALENDAR,
            scheduled_start__lt=hi + timedelta(days=1),
            scheduled_end__gt=lo - timedelta(days=1),
        )
        .select_related("rfc", "environment__site")
        .order_by("scheduled_start")
    )
    for deployment in deployments:
        # Across sites each deployment stands on its own site's local day (labelled with its zone).
        shown_day = (
            deployment.calendar_span[0]
            .astimezone(deployment.environment.site.zone if all_sites else display_tz)
            .date()
        )
        if shown_day in days:
            days[shown_day].entries.append(_deployment_entry(deployment, display_tz, with_zone=all_sites))

    for shown_day, item in days.items():
        item.entries.sort(key=lambda entry: entry.sort_key)
        by_site = blocked_by_site.get(shown_day, {})
        item.blocked = bool(sites) and all(each.code in by_site for each in sites)
        item.blocked_reasons = [
            f"{code_}: {reason}" if all_sites else reason
            for code_, reasons in sorted(by_site.items())
            for reason in reasons
        ]

    base_url = (
        reverse("environments:calendar_site", args=[site.code]) if site else reverse("environments:calendar")
    )

    def link(**params) -> str:
        return f"{base_url}?{urlencode(params)}"

    ordered = [days[key] for key in sorted(days)]
    if view == "week":
        heading = gettext("Week of %(first)s – %(last)s") % {
            "first": date_format(first, pgettext("date format: day and short month", "j M")),
            "last": date_format(last, pgettext("date format: day, short month and year", "j M Y")),
        }
    else:
        heading = date_format(anchor, "F Y")
    context = {
        "site": site,
        "sites": sites,
        "all_sites": all_sites,
        "view": view,
        "heading": heading,
        "zone_label": site.timezone if site else gettext("UTC dates, each event in its site's local time"),
        "days": ordered,
        "weeks": [ordered[n : n + 7] for n in range(0, len(ordered), 7)],
        "weekday_names": calendar.SHORT_WEEKDAYS,
        "legend": LEGEND,
        "prev_url": link(view=view, date=prev_anchor.isoformat()),
        "next_url": link(view=view, date=next_anchor.isoformat()),
        "today_url": link(view=view),
        "week_url": link(view="week", date=(anchor if view == "week" else max(first, anchor)).isoformat()),
        "month_url": link(view="month", date=anchor.isoformat()),
        "anchor": anchor,
        "site_links": [
            {
                "label": gettext("All sites"),
                "url": f"{reverse('environments:calendar')}?{urlencode({'view': view})}",
                "current": all_sites,
            },
            *(
                {
                    "label": each.code,
                    "url": f"{reverse('environments:calendar_site', args=[each.code])}?"
                    f"{urlencode({'view': view})}",
                    "current": site is not None and each.pk == site.pk,
                }
                for each in visible
            ),
        ],
        "feed_page_url": reverse("environments:calendar_feed"),
        "now_utc": clock.now().astimezone(UTC),
    }
    return render(request, "environments/calendar.html", context)
