"""The plant calendar as pure functions (PRODUCT.md W1–W6).

Nothing here reads the database or the clock: `Rules` holds a site's calendar, `check()` says
whether a deployment may start at a time and why not, `next_slots()` finds the first allowed
starts. Both work on intervals in UTC computed from the rules in the site's time zone, so a day
of 23 or 25 hours (DST) is handled by zoneinfo, not by arithmetic on local times.

Local times that do not exist (the spring gap) are read with the offset before the change, i.e.
shifted forward by the gap; a local time that occurs twice (autumn) means its first occurrence.

A deployment needs its own duration plus the smoke-test delay plus the rollback budget (W5):
that whole span must lie inside one window and touch no blocked interval.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.functional import lazy


def gettext(message: str) -> str:
    """Django's gettext once settings are configured; the English text itself in a bare script
    (bench/calendar_bench.py runs these functions without Django)."""
    from django.conf import settings

    if not settings.configured:
        return message
    from django.utils.translation import gettext as translate

    return translate(message)


gettext_lazy = lazy(gettext, str)

WEEKDAYS = [
    gettext_lazy("Monday"),
    gettext_lazy("Tuesday"),
    gettext_lazy("Wednesday"),
    gettext_lazy("Thursday"),
    gettext_lazy("Friday"),
    gettext_lazy("Saturday"),
    gettext_lazy("Sunday"),
]
# "no deployment window on Mondays"
WEEKDAYS_PLURAL = [
    gettext_lazy("Mondays"),
    gettext_lazy("Tuesdays"),
    gettext_lazy("Wednesdays"),
    gettext_lazy("Thursdays"),
    gettext_lazy("Fridays"),
    gettext_lazy("Saturdays"),
    gettext_lazy("Sundays"),
]
SHORT_WEEKDAYS = [
    gettext_lazy("Mon"),
    gettext_lazy("Tue"),
    gettext_lazy("Wed"),
    gettext_lazy("Thu"),
    gettext_lazy("Fri"),
    gettext_lazy("Sat"),
    gettext_lazy("Sun"),
]
CHUNK_DAYS = 21
MAX_HORIZON_DAYS = 400


@dataclass(frozen=True)
class Window:
    weekday: int  # 0 = Monday
    start: time
    end: time

    def label(self) -> str:
        return window_span(self.start, self.end)


def window_span(start: time, end: time) -> str:
    """'22:00–24:00': a window that ends at 00:00 ends at midnight, the end of its day."""
    return f"{start:%H:%M}–{'24:00' if end == time(0) else format(end, '%H:%M')}"


@dataclass(frozen=True)
class Handover:
    at: time
    buffer_minutes: int = 30


@dataclass(frozen=True)
class Freeze:
    """A one-off range (peak season, a shutdown) in UTC."""

    name: str
    start: datetime
    end: datetime
    reason: str = ""


@dataclass(frozen=True)
class Rules:
    timezone: str = "UTC"
    enforced: bool = True  # DEV and UAT have no windows by default
    windows: tuple[Window, ...] = ()
    handovers: tuple[Handover, ...] = ()
    block_fridays: bool = True
    quarter_close_days: int = 10  # the last N days of each quarter; 0 = no quarter freeze
    freezes: tuple[Freeze, ...] = ()
    holiday_country: str = ""
    holiday_subdivision: str = ""
    smoke_test_minutes: int = 15
    rollback_budget_minutes: int = 15

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def need(self, duration_minutes: int) -> timedelta:
        return timedelta(minutes=duration_minutes + self.smoke_test_minutes + self.rollback_budget_minutes)

    def describe_windows(self) -> str:
        days: dict[str, list[int]] = {}
        for w in sorted(self.windows, key=lambda w: (w.start, w.end, w.weekday)):
            days.setdefault(w.label(), []).append(w.weekday)
        groups: dict[tuple[int, ...], list[str]] = {}
        for label, weekdays in days.items():
            groups.setdefault(tuple(sorted(set(weekdays))), []).append(label)
        parts = [
            f"{', '.join(str(SHORT_WEEKDAYS[d]) for d in key)} {', '.join(labels)}"
            for key, labels in groups.items()
        ]
        return "; ".join(parts) or gettext("none")


@dataclass(frozen=True)
class Block:
    start: datetime
    end: datetime
    reason: str  # in English: what the calendar pages and feeds read and compare
    kind: str  # friday, handover, freeze, quarter, holiday
    label: str = field(default="", compare=False)  # the reason in the reader's language


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None  # start + duration + smoke test + rollback budget

    def as_dict(self) -> dict:
        return {"allowed": self.allowed, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime


# --- Local time → UTC -------------------------------------------------------------------------
def at_local(day: date, moment: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (fold=0: the gap shifts forward, the overlap means the first)."""
    return datetime.combine(day, moment).replace(tzinfo=tz).astimezone(UTC)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return at_local(day, time(0), tz), at_local(day + timedelta(days=1), time(0), tz)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("A time without its offset is ambiguous; give it with an offset or in UTC.")
    return value.astimezone(UTC)


def _local_days(rules: Rules, start: datetime, end: datetime) -> Iterable[date]:
    tz = rules.tz
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# --- Holidays ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str, year: int) -> dict[date, str]:
    import holidays

    try:
        found = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        return {}
    return dict(found.items())


def holiday_name(rules: Rules, day: date) -> str | None:
    if not rules.holiday_country:
        return None
    return _holidays(rules.holiday_country.upper(), rules.holiday_subdivision.upper(), day.year).get(day)


def _quarter_close(day: date, days: int) -> bool:
    if days <= 0:
        return False
    quarter_end_month = ((day.month - 1) // 3 + 1) * 3
    next_quarter = date(day.year + (quarter_end_month == 12), quarter_end_month % 12 + 1, 1)
    return (next_quarter - day).days <= days


# --- Intervals ----------------------------------------------------------------------------------
def windows_between(rules: Rules, start: datetime, end: datetime) -> list[tuple[datetime, datetime, Window]]:
    """Every window occurrence touching [start, end), in UTC, sorted."""
    tz = rules.tz
    found = []
    for day in _local_days(rules, start, end):
        for window in rules.windows:
            if window.weekday != day.weekday():
                continue
            w_start = at_local(day, window.start, tz)
            w_end = (
                at_local(day, window.end, tz)
                if window.end > window.start
                else at_local(day + timedelta(days=1), window.end, tz)
            )
            if w_end > w_start and w_end > start and w_start < end:
                found.append((w_start, w_end, window))
    found.sort(key=lambda item: (item[0], item[1]))
    return found


def blocks_between(
    rules: Rules, start: datetime, end: datetime, *, emergency: bool = False, handover_override: bool = False
) -> list[Block]:
    """Every blocked interval touching [start, end), each with the reason a person reads.

    An emergency change ignores windows, Fridays, freezes and holidays, but not the shift
    handovers unless the Plant Director overrides them (W6).
    """
    tz = rules.tz
    blocks: list[Block] = []
    for day in _local_days(rules, start, end):
        lo, hi = day_bounds(day, tz)
        if not emergency:
            if rules.block_fridays and day.weekday() == 4:
                blocks.append(Block(lo, hi, "Friday", "friday", gettext("Friday")))
            if _quarter_close(day, rules.quarter_close_days):
                quarter = (day.month - 1) // 3 + 1
                blocks.append(
                    Block(
                        lo,
                        hi,
                        f"freeze: Q{quarter} close (last {rules.quarter_close_days} days of the quarter)",
                        "quarter",
                        gettext("freeze: Q%(quarter)s close (last %(days)s days of the quarter)")
                        % {"quarter": quarter, "days": rules.quarter_close_days},
                    )
                )
            name = holiday_name(rules, day)
            if name:
                blocks.append(
                    Block(
                        lo,
                        hi,
                        f"public holiday: {name}",
                        "holiday",
                        gettext("public holiday: %(name)s") % {"name": name},
                    )
                )
        if not handover_override:
            for handover in rules.handovers:
                moment = at_local(day, handover.at, tz)
                buffer = timedelta(minutes=handover.buffer_minutes)
                blocks.append(
                    Block(
                        moment - buffer,
                        moment + buffer,
                        f"shift handover {handover.at:%H:%M} ±{handover.buffer_minutes} min",
                        "handover",
                        gettext("shift handover %(at)s ±%(minutes)s min")
                        % {"at": f"{handover.at:%H:%M}", "minutes": handover.buffer_minutes},
                    )
                )
    if not emergency:
        for freeze in rules.freezes:
            blocks.append(
                Block(
                    freeze.start,
                    freeze.end,
                    f"freeze: {freeze.name}",
                    "freeze",
                    gettext("freeze: %(name)s") % {"name": freeze.name},
                )
            )
    return sorted(
        (b for b in blocks if b.end > start and b.start < end), key=lambda b: (b.start, b.end, b.reason)
    )


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for lo, hi in sorted(intervals):
        if hi < lo:
            continue  # an empty interval (a handover with no buffer) still cuts at its instant
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _subtract(spans: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]):
    result = []
    for lo, hi in spans:
        cursor = lo
        for h_lo, h_hi in holes:
            if h_hi <= cursor or h_lo >= hi:
                continue
            if h_lo > cursor:
                result.append((cursor, h_lo))
            cursor = max(cursor, h_hi)
            if cursor >= hi:
                break
        if cursor < hi:
            result.append((cursor, hi))
    return result


def free_intervals(
    rules: Rules, start: datetime, end: datetime, *, emergency: bool = False, handover_override: bool = False
) -> list[tuple[datetime, datetime]]:
    """Where a deployment may run: the windows (or all time, for an emergency) minus every block."""
    if not rules.enforced:
        spans = [(start, end)]
        holes: list[tuple[datetime, datetime]] = []
    else:
        spans = (
            [(start, end)]
            if emergency
            else _merge((lo, hi) for lo, hi, _ in windows_between(rules, start, end))
        )
        holes = _merge(
            (b.start, b.end)
            for b in blocks_between(
                rules, start, end, emergency=emergency, handover_override=handover_override
            )
        )
    return _subtract(spans, holes)


# --- The two questions --------------------------------------------------------------------------
def check(
    rules: Rules,
    start: datetime,
    duration_minutes: int,
    *,
    emergency: bool = False,
    handover_override: bool = False,
) -> Decision:
    """May a deployment of `duration_minutes` start at `start`? Every reason that blocks it."""
    if duration_minutes < 0:
        raise ValueError("The duration cannot be negative.")
    start = _aware(start)
    end = start + rules.need(duration_minutes)
    if not rules.enforced:
        return Decision(True, [], start, end)
    reasons: list[str] = []
    if not emergency:
        reasons.extend(_window_reasons(rules, start, end, duration_minutes))
    seen = set()
    # A zero-length need still occupies its start instant: at the first minute of a holiday it is blocked.
    occupied_end = end if end > start else start + timedelta(microseconds=1)
    for block in blocks_between(
        rules, start, occupied_end, emergency=emergency, handover_override=handover_override
    ):
        if block.reason not in seen:
            seen.add(block.reason)
            reasons.append(block.label or block.reason)
    return Decision(not reasons, reasons, start, end)


def _window_reasons(rules: Rules, start: datetime, end: datetime, duration_minutes: int) -> list[str]:
    tz = rules.tz
    spans = _merge(
        (lo, hi) for lo, hi, _ in windows_between(rules, start - timedelta(days=1), end + timedelta(days=1))
    )
    holding = next(((lo, hi) for lo, hi in spans if lo <= start < hi), None)
    local = start.astimezone(tz)
    if holding is None:
        if not any(w.weekday == local.weekday() for w in rules.windows):
            return [
                gettext("no deployment window on %(weekdays)s (windows: %(windows)s)")
                % {"weekdays": WEEKDAYS_PLURAL[local.weekday()], "windows": rules.describe_windows()}
            ]
        return [
            gettext("outside the deployment windows (%(windows)s)") % {"windows": rules.describe_windows()}
        ]
    if end > holding[1]:
        return [
            gettext(
                "window ends %(ends)s but deployment (%(duration)s min) + %(smoke)s min smoke test + "
                "%(rollback)s min rollback budget need until %(until)s"
            )
            % {
                "ends": f"{holding[1].astimezone(tz):%H:%M}",
                "duration": duration_minutes,
                "smoke": rules.smoke_test_minutes,
                "rollback": rules.rollback_budget_minutes,
                "until": f"{end.astimezone(tz):%H:%M}",
            }
        ]
    return []


def _on_grid(moment: datetime, step_minutes: int) -> datetime:
    """`moment` rounded up to the next multiple of `step_minutes` (UTC minutes; every zone's offset
    is a multiple of 15 minutes, so a quarter-hour grid is the same in local time)."""
    if step_minutes <= 0:
        return moment
    minutes = int(moment.timestamp()) // 60
    remainder = minutes % step_minutes
    if remainder == 0 and moment.second == 0 and moment.microsecond == 0:
        return moment
    return datetime.fromtimestamp((minutes - remainder + step_minutes) * 60, tz=moment.tzinfo)


def next_slots(
    rules: Rules,
    after: datetime,
    duration_minutes: int,
    count: int = 5,
    *,
    emergency: bool = False,
    handover_override: bool = False,
    horizon_days: int = MAX_HORIZON_DAYS,
    step_minutes: int = 0,
) -> list[Slot]:
    """The first `count` allowed starts at or after `after` (rounded up to the minute).

    Computed from intervals, not by scanning minutes: each free interval (windows minus blocks)
    long enough for the deployment offers its earliest start, then back-to-back starts while the
    deployment still fits. With `step_minutes`, starts fall on that grid (every 15 minutes: :00,
    :15, :30, :45) and follow each other by that step, so a short change is offered every step.
    """
    after = _aware(after)
    if after.second or after.microsecond:
        after = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    need = rules.need(duration_minutes)
    limit = after + timedelta(days=min(horizon_days, MAX_HORIZON_DAYS))
    slots: list[Slot] = []
    cursor, first = after, True
    while cursor < limit and len(slots) < count:
        chunk_end = min(cursor + timedelta(days=CHUNK_DAYS), limit)
        # From a day early and past the chunk's end, so an interval crossing an edge is seen whole.
        free = free_intervals(
            rules,
            cursor - timedelta(days=1),
            chunk_end + need + timedelta(days=1),
            emergency=emergency,
            handover_override=handover_override,
        )
        for lo, hi in free:
            if lo >= chunk_end or len(slots) == count:
                break
            if (not first and lo < cursor) or hi <= after:
                continue  # seen in the previous chunk, or over before `after`
            begin = _on_grid(max(lo, after), step_minutes)
            advance = timedelta(minutes=step_minutes) if step_minutes else max(need, timedelta(minutes=1))
            while begin + need <= hi and begin < hi and begin < limit and len(slots) < count:
                slots.append(Slot(begin, begin + need))
                begin += advance
        cursor, first = chunk_end, False
    return slots
