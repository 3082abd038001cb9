"""The plant calendar (W1–W6): the seed rules as a table, DST in Berlin and Chicago,
property-based agreement between `check()` and `next_slots()`, emergency rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from environments import calendar
from environments.calendar import Freeze, Handover, Rules, Window, check, next_slots
from environments.models import DeploymentWindow, ShiftHandover, Tier
from environments.models import Freeze as FreezeRow
from environments.windows import rules_for

BERLIN = ZoneInfo("Europe/Berlin")
CHICAGO = ZoneInfo("America/Chicago")
DEFAULT_WINDOWS = tuple(Window(day, time(a), time(b)) for day in (1, 2, 3) for a, b in ((9, 11), (14, 16)))
DEFAULT_HANDOVERS = tuple(Handover(time(h), 30) for h in (6, 14, 22))


def plant(tz="Europe/Berlin", country="DE", subdivision="BE", **extra) -> Rules:
    return Rules(
        timezone=tz,
        windows=DEFAULT_WINDOWS,
        handovers=DEFAULT_HANDOVERS,
        holiday_country=country,
        holiday_subdivision=subdivision,
        **extra,
    )


def local(y, m, d, hh, mm=0, tz=BERLIN) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


# --- The seed rules -------------------------------------------
SEED = [
    # (what, local start, duration, allowed, a reason that must be named)
    ("Tuesday 09:00", local(2026, 11, 10, 9), 30, True, None),
    (
        "Tuesday 10:45 for 30 min does not fit",
        local(2026, 11, 10, 10, 45),
        30,
        False,
        "window ends 11:00 but deployment (30 min) + 15 min smoke test + 15 min rollback budget need until 11:45",
    ),
    ("Friday 10:00", local(2026, 11, 13, 10), 30, False, "Friday"),
    ("Wednesday 14:10 (handover)", local(2026, 11, 11, 14, 10), 30, False, "shift handover 14:00 ±30 min"),
    ("Thursday 14:30", local(2026, 11, 12, 14, 30), 30, True, None),
    ("last days of Q3", local(2026, 9, 22, 9), 30, False, "freeze: Q3 close (last 10 days of the quarter)"),
    ("eleven days before Q4 ends is open", local(2026, 12, 17, 9), 30, True, None),
    ("Monday", local(2026, 11, 9, 10), 30, False, "no deployment window on Mondays"),
    ("Sunday", local(2026, 11, 15, 10), 30, False, "no deployment window on Sundays"),
    ("Tuesday 12:00 between windows", local(2026, 11, 10, 12), 30, False, "outside the deployment windows"),
]


@pytest.mark.parametrize(
    ("what", "start", "duration", "allowed", "reason"), SEED, ids=[row[0] for row in SEED]
)
def test_seed_rules(what, start, duration, allowed, reason):
    decision = check(plant(), start, duration)
    assert decision.allowed is allowed, decision.reasons
    if reason:
        assert any(r.startswith(reason) for r in decision.reasons), decision.reasons


def test_a_public_holiday_is_refused():
    # Ascension Day 2026 falls on Thursday 14 May: a normal window day in Berlin.
    decision = check(plant(), local(2026, 5, 14, 9), 30)
    assert not decision.allowed
    assert any(r.startswith("public holiday: ") for r in decision.reasons)
    assert check(plant(country=""), local(2026, 5, 14, 9), 30).allowed  # no country, no holidays


def test_a_one_off_freeze_names_itself():
    peak = Freeze("Peak season", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    decision = check(plant(freezes=(peak,)), local(2026, 11, 10, 9), 30)
    assert decision.reasons == ["freeze: Peak season"]


def test_every_reason_is_listed():
    # Friday 14:10 inside a freeze: Friday, no window, the handover and the freeze all named.
    peak = Freeze("Peak season", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    reasons = check(plant(freezes=(peak,)), local(2026, 11, 13, 14, 10), 30).reasons
    assert reasons[0].startswith("no deployment window on Fridays")
    assert {"Friday", "shift handover 14:00 ±30 min", "freeze: Peak season"} <= set(reasons)


def test_unenforced_environment_is_always_allowed():
    rules = Rules(
        timezone="Europe/Berlin", enforced=False, windows=DEFAULT_WINDOWS, handovers=DEFAULT_HANDOVERS
    )
    assert check(rules, local(2026, 11, 13, 14), 30).allowed
    slots = next_slots(rules, local(2026, 11, 13, 14), 30, count=3)
    assert [s.start for s in slots] == [local(2026, 11, 13, 14) + timedelta(hours=h) for h in range(3)]


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="offset"):
        check(plant(), datetime(2026, 11, 10, 9), 30)


def test_next_slots_skip_handovers_fridays_and_respect_the_fit():
    after = local(2026, 11, 10, 10, 45)  # Tuesday, too late for the morning window
    slots = next_slots(plant(), after, 30, count=4)
    starts = [s.start.astimezone(BERLIN).replace(tzinfo=None) for s in slots]
    assert starts == [
        datetime(2026, 11, 10, 14, 30),  # the afternoon window opens after the handover buffer
        datetime(2026, 11, 11, 9, 0),  # 15:30 + 60 min would end after 16:00
        datetime(2026, 11, 11, 10, 0),  # back to back: ends exactly at 11:00
        datetime(2026, 11, 11, 14, 30),
    ]
    assert all(s.end - s.start == timedelta(minutes=60) for s in slots)


def test_next_slots_across_a_quarter_close_and_christmas():
    slots = next_slots(plant(), local(2026, 12, 18, 0), 30, count=1)
    # Dec 22–31 is the Q4 close; Jan 1 is a holiday and a Friday; Tue 5 Jan 2027 is the next slot.
    assert slots[0].start == local(2027, 1, 5, 9)


# --- DST ---------------------------------------------------------------------------------------
def test_day_length_on_dst_days():
    assert calendar.day_bounds(date(2026, 3, 29), BERLIN)[1] - calendar.day_bounds(date(2026, 3, 29), BERLIN)[
        0
    ] == timedelta(hours=23)
    assert calendar.day_bounds(date(2026, 10, 25), BERLIN)[1] - calendar.day_bounds(
        date(2026, 10, 25), BERLIN
    )[0] == timedelta(hours=25)


@pytest.mark.parametrize(
    ("tz", "before", "after", "utc_before", "utc_after"),
    [
        (BERLIN, date(2026, 3, 24), date(2026, 3, 31), 8, 7),  # CET → CEST
        (BERLIN, date(2026, 10, 20), date(2026, 10, 27), 7, 8),  # CEST → CET
        (CHICAGO, date(2026, 3, 3), date(2026, 3, 10), 15, 14),  # CST → CDT
        (CHICAGO, date(2026, 10, 27), date(2026, 11, 3), 14, 15),  # CDT → CST
    ],
)
def test_windows_keep_local_time_across_dst(tz, before, after, utc_before, utc_after):
    rules = plant(tz=tz.key, country="", quarter_close_days=0)
    first = next_slots(rules, datetime.combine(before, time(0), tzinfo=tz), 30, count=1)[0]
    assert first.start == datetime.combine(before, time(utc_before), tzinfo=UTC)
    second = next_slots(rules, datetime.combine(after, time(0), tzinfo=tz), 30, count=1)[0]
    assert second.start == datetime.combine(after, time(utc_after), tzinfo=UTC)
    assert first.start.astimezone(tz).time() == second.start.astimezone(tz).time() == time(9)


def test_a_local_time_that_does_not_exist_is_shifted_forward():
    # Berlin, 29 March 2026: 02:00 jumps to 03:00. A handover "at 02:30" happens at 03:30 CEST.
    rules = Rules(
        timezone="Europe/Berlin",
        enforced=True,
        windows=(Window(6, time(0), time(23, 59)),),
        handovers=(Handover(time(2, 30), 30),),
        block_fridays=False,
        quarter_close_days=0,
    )
    blocked = calendar.blocks_between(
        rules, datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 29, 4, tzinfo=UTC)
    )
    assert [(b.start, b.end) for b in blocked] == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    ]
    assert not check(rules, datetime(2026, 3, 29, 1, 15, tzinfo=UTC), 0).allowed
    assert check(rules, datetime(2026, 3, 29, 2, 0, tzinfo=UTC), 0).allowed


def test_a_local_time_that_occurs_twice_means_the_first():
    # Berlin, 25 October 2026: 03:00 goes back to 02:00; 02:30 happens at 00:30 and at 01:30 UTC.
    rules = Rules(
        timezone="Europe/Berlin",
        enforced=True,
        windows=(Window(6, time(0), time(23, 59)),),
        handovers=(Handover(time(2, 30), 15),),
        block_fridays=False,
        quarter_close_days=0,
        smoke_test_minutes=0,
        rollback_budget_minutes=0,
    )
    assert not check(rules, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 10).allowed
    assert check(rules, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), 10).allowed


# --- Emergency changes (W6) ----------------------------------------------------------------------
def test_emergency_ignores_windows_fridays_and_freezes_but_not_handovers():
    peak = Freeze("Peak season", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    rules = plant(freezes=(peak,))
    friday_night = local(2026, 11, 13, 19)
    assert not check(rules, friday_night, 30).allowed
    assert check(rules, friday_night, 30, emergency=True).allowed
    handover = local(2026, 11, 13, 21, 45)
    decision = check(rules, handover, 30, emergency=True)
    assert decision.reasons == ["shift handover 22:00 ±30 min"]
    assert check(rules, handover, 30, emergency=True, handover_override=True).allowed
    slots = next_slots(rules, handover, 30, count=1, emergency=True)
    assert slots[0].start == local(2026, 11, 13, 22, 30)


# --- Property-based: the check and the slot search never disagree ------------------------------------
ZONES = ["Europe/Berlin", "America/Chicago", "UTC", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns"]


@st.composite
def rule_sets(draw):
    windows = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, 22 * 4)) * 15
        length = draw(st.integers(2, 24)) * 15
        end = min(start + length, 23 * 60 + 59)
        windows.append(
            Window(draw(st.integers(0, 6)), time(start // 60, start % 60), time(end // 60, end % 60))
        )
    handovers = tuple(
        Handover(time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30]))), draw(st.integers(0, 60)))
        for _ in range(draw(st.integers(0, 3)))
    )
    freezes = []
    for n in range(draw(st.integers(0, 2))):
        begin = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 400 * 24 * 60)))
        freezes.append(Freeze(f"F{n}", begin, begin + timedelta(minutes=draw(st.integers(1, 14 * 24 * 60)))))
    return Rules(
        timezone=draw(st.sampled_from(ZONES)),
        windows=tuple(windows),
        handovers=handovers,
        block_fridays=draw(st.booleans()),
        quarter_close_days=draw(st.sampled_from([0, 3, 10])),
        freezes=tuple(freezes),
        holiday_country=draw(st.sampled_from(["", "DE", "US"])),
        smoke_test_minutes=draw(st.sampled_from([0, 15])),
        rollback_budget_minutes=draw(st.sampled_from([0, 15])),
    )


minutes_2026 = st.integers(0, 365 * 24 * 60).map(
    lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m)
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=rule_sets(),
    after=minutes_2026,
    duration=st.integers(0, 240),
    emergency=st.booleans(),
    probe=st.floats(0, 1),
)
def test_slots_are_allowed_earliest_and_clear_of_blocks(rules, after, duration, emergency, probe):
    slots = next_slots(rules, after, duration, count=4, emergency=emergency, horizon_days=60)
    need = rules.need(duration)
    previous_end = after
    for slot in slots:
        assert slot.start >= previous_end  # increasing, never overlapping
        assert slot.end - slot.start == need
        decision = check(rules, slot.start, duration, emergency=emergency)
        assert decision.allowed, (slot, decision.reasons)
        assert not calendar.blocks_between(rules, slot.start, slot.end, emergency=emergency)
        previous_end = slot.end
    # Nothing allowed is skipped before the first slot (or within the horizon, when there is none).
    limit = slots[0].start if slots else after + timedelta(days=60) - need
    span = int((limit - after).total_seconds() // 60)
    assume(span > 0)
    t = after + timedelta(minutes=int(probe * (span - 1)))
    assert not check(rules, t, duration, emergency=emergency).allowed, t


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), after=minutes_2026, duration=st.integers(0, 120))
def test_check_agrees_with_free_intervals_minute_by_minute(rules, after, duration):
    """An independent oracle over one day, every 5 minutes: allowed ⇔ the span fits a free interval."""
    need = rules.need(duration)
    end = after + timedelta(days=1)
    free = calendar.free_intervals(rules, after - timedelta(days=1), end + need + timedelta(days=1))
    t = after
    while t < end:
        fits = any(lo <= t < hi and t + need <= hi for lo, hi in free)
        assert check(rules, t, duration).allowed is fits, (t, check(rules, t, duration).reasons)
        t += timedelta(minutes=5)


# --- From the database ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_new_site_gets_the_default_calendar_and_prod_enforces_it(site_a):
    assert DeploymentWindow.objects.filter(site=site_a).count() == 6
    assert sorted(h.at for h in ShiftHandover.objects.filter(site=site_a)) == [time(6), time(14), time(22)]
    prod = site_a.environments.get(tier=Tier.PROD)
    uat = site_a.environments.get(tier=Tier.UAT)
    assert prod.windows_enforced and not uat.windows_enforced
    assert not check(rules_for(prod), local(2026, 11, 13, 10), 30).allowed
    assert check(rules_for(uat), local(2026, 11, 13, 10), 30).allowed


@pytest.mark.django_db
def test_database_rules_include_site_and_global_freezes(site_a, site_b):
    FreezeRow.objects.create(
        site=site_a,
        name="Line 2 rebuild",
        starts_at=datetime(2026, 11, 9, tzinfo=UTC),
        ends_at=datetime(2026, 11, 12, tzinfo=UTC),
    )
    FreezeRow.objects.create(
        site=None,
        name="Group audit",
        starts_at=datetime(2026, 11, 17, tzinfo=UTC),
        ends_at=datetime(2026, 11, 18, tzinfo=UTC),
    )
    prod_a = site_a.environments.get(tier=Tier.PROD)
    prod_b = site_b.environments.get(tier=Tier.PROD)
    assert check(rules_for(prod_a), local(2026, 11, 10, 9), 30).reasons == ["freeze: Line 2 rebuild"]
    assert check(rules_for(prod_b), local(2026, 11, 10, 9, tz=CHICAGO), 30).allowed
    assert check(rules_for(prod_a), local(2026, 11, 17, 9), 30).reasons == ["freeze: Group audit"]


def test_a_zero_length_need_at_the_first_minute_of_a_holiday_is_blocked():
    """W4: found by the property test above. Chicago, a window Thursdays 00:00–00:30, German holidays:
    New Year's Day 00:00 local is inside the holiday even when nothing is deployed for a minute."""
    rules = calendar.Rules(
        timezone="America/Chicago",
        enforced=True,
        windows=(calendar.Window(weekday=3, start=time(0, 0), end=time(0, 30)),),
        handovers=(),
        block_fridays=False,
        quarter_close_days=0,
        freezes=(),
        holiday_country="DE",
        holiday_subdivision="",
        smoke_test_minutes=0,
        rollback_budget_minutes=0,
    )
    new_year = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)  # 00:00 in Chicago, a Thursday
    decision = check(rules, new_year, 0)
    assert not decision.allowed and any("holiday" in reason.lower() for reason in decision.reasons)
    assert check(rules, new_year + timedelta(days=7), 0).allowed  # the Thursday after is an ordinary one


# --- A window until midnight (W1) ----------------------------------------------------------------
def test_a_window_ending_at_midnight_leaves_no_minute_between_days():
    """00:00 as a window's end is midnight: a plant open round the clock is open at 23:59:30 too, so a
    ten-minute change at 23:55 fits (the demo's open line; its journeys must not depend on the hour)."""
    rules = Rules(
        timezone="Europe/Berlin",
        enforced=True,
        windows=tuple(Window(day, time(0), time(0)) for day in range(7)),
        block_fridays=False,
        quarter_close_days=0,
        smoke_test_minutes=15,
        rollback_budget_minutes=30,
    )
    late = datetime(2026, 12, 4, 23, 55, tzinfo=BERLIN)
    assert check(rules, late, 10).allowed
    assert check(rules, late + timedelta(minutes=4, seconds=30), 10).allowed
    spans = calendar.free_intervals(rules, late - timedelta(days=2), late + timedelta(days=2))
    assert (
        len(spans) == 1
        and spans[0][0] <= late - timedelta(days=2)
        and spans[0][1] >= late + timedelta(days=2)
    )
    assert Window(4, time(22), time(0)).label() == "22:00–24:00"
    assert not check(
        Rules(timezone="Europe/Berlin", windows=(Window(4, time(22), time(23, 59)),), block_fridays=False),
        late,
        10,
    ).allowed


@pytest.mark.django_db
def test_a_stored_window_may_end_at_midnight_but_not_before_it_starts(site_a):
    from django.core.exceptions import ValidationError

    until_midnight = DeploymentWindow(site=site_a, weekday=4, starts=time(22), ends=time(0))
    until_midnight.full_clean()
    until_midnight.save()
    assert str(until_midnight) == "Friday 22:00–24:00"
    backwards = DeploymentWindow(site=site_a, weekday=4, starts=time(22), ends=time(21))
    with pytest.raises(ValidationError, match="or at 00:00 for midnight"):
        backwards.full_clean()
