"""The plant calendar at its edges (PRODUCT.md W1–W6): minute rounding, back-to-back slots, the
search's 21-day chunks and horizon, quarter closes, windows past midnight, emergencies and the
reasons a person reads. Pure functions: every instant is given, nothing reads the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from environments import calendar
from environments.calendar import Freeze, Handover, Rules, Window, check, next_slots

BERLIN = ZoneInfo("Europe/Berlin")
EVERY_DAY = tuple(Window(day, time(9), time(11)) for day in range(7))
SEED_WINDOWS = tuple(Window(day, time(a), time(b)) for day in (1, 2, 3) for a, b in ((9, 11), (14, 16)))
SEED_HANDOVERS = tuple(Handover(time(h), 30) for h in (6, 14, 22))


def plain(**extra) -> Rules:
    """A calendar with nothing but its windows: no Fridays, quarter closes or holidays."""
    fields = {"timezone": "Europe/Berlin", "block_fridays": False, "quarter_close_days": 0, **extra}
    return Rules(**fields)


def local(y, m, d, hh, mm=0, ss=0, us=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=BERLIN)


def starts(slots) -> list[datetime]:
    return [s.start.astimezone(BERLIN).replace(tzinfo=None) for s in slots]


# --- next_slots -------------------------------------------------------------------------------------
def test_five_slots_unless_asked_otherwise():
    """W1: the scheduling form offers the first five allowed starts."""
    assert len(next_slots(plain(windows=EVERY_DAY), local(2026, 11, 10, 9), 30)) == 5


@pytest.mark.parametrize(
    "after",
    [local(2026, 11, 10, 9, 0, 30, 250_000), local(2026, 11, 10, 9, 0, 0, 1), local(2026, 11, 10, 9, 0, 59)],
)
def test_a_start_between_minutes_is_rounded_up_to_the_next_minute(after):
    """W1, W5: offered starts are whole minutes, never before the moment asked about."""
    slot = next_slots(plain(windows=EVERY_DAY), after, 30, count=1)[0]
    assert slot.start == local(2026, 11, 10, 9, 1) and slot.end == slot.start + timedelta(minutes=60)


def test_a_whole_minute_is_kept():
    """W1: a start at a whole minute is offered as it is."""
    assert next_slots(plain(windows=EVERY_DAY), local(2026, 11, 10, 9), 30, count=1)[0].start == local(
        2026, 11, 10, 9
    )


def test_a_deployment_of_no_length_gets_a_start_every_minute_inside_the_window():
    """W5: back to back, one minute apart at least, and never at the window's end itself."""
    rules = plain(windows=(Window(1, time(9), time(9, 3)),), smoke_test_minutes=0, rollback_budget_minutes=0)
    assert starts(next_slots(rules, local(2026, 11, 10, 8), 0, count=4)) == [
        datetime(2026, 11, 10, 9, 0),
        datetime(2026, 11, 10, 9, 1),
        datetime(2026, 11, 10, 9, 2),
        datetime(2026, 11, 17, 9, 0),
    ]


@pytest.mark.parametrize("minute", [0, 30])
def test_slots_continue_day_by_day_across_the_21_day_chunks(minute):
    """W1: a search over more than three weeks finds every day's slot once, across its chunk edges
    (a chunk ends 21 days after the start: at a window's opening, or inside a window)."""
    after = local(2026, 11, 2, 9, minute)
    found = starts(next_slots(plain(windows=EVERY_DAY), after, 60, count=30))
    days = [s.date() for s in found]
    assert days == [date(2026, 11, 2) + timedelta(days=n) for n in range(30)]


def test_slots_starting_exactly_at_a_chunk_edge_are_found_once():
    """W1: the window that opens exactly 21 days after the first one is offered once."""
    found = starts(next_slots(plain(windows=EVERY_DAY), local(2026, 11, 2, 9), 90, count=25))
    assert len(found) == len(set(found)) == 25
    assert [s.date() for s in found] == [date(2026, 11, 2) + timedelta(days=n) for n in range(25)]


def test_nothing_is_offered_at_or_after_the_horizon():
    """W1: the search stops at its horizon: a start exactly there is not offered."""
    rules = plain(windows=(Window(1, time(9), time(11)),))
    slots = next_slots(rules, local(2026, 11, 9, 10), 0, count=5, horizon_days=1)
    assert starts(slots) == [datetime(2026, 11, 10, 9, 0), datetime(2026, 11, 10, 9, 30)]


def test_the_horizon_is_at_most_400_days():
    """W1: no search runs further than 400 days, whatever is asked."""
    rules = plain(
        windows=(Window(1, time(9), time(11)),),
        freezes=(Freeze("shutdown", datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 12, 1, tzinfo=UTC)),),
    )
    assert next_slots(rules, local(2026, 11, 2, 0), 30, count=1, horizon_days=10_000) == []


def test_the_plant_director_may_override_the_handover_in_an_emergency():
    """W3, W6: an emergency start inside a handover buffer only with the override."""
    rules = plain(windows=EVERY_DAY, handovers=SEED_HANDOVERS)
    after = local(2026, 11, 13, 21, 45)
    assert next_slots(rules, after, 30, count=1, emergency=True)[0].start == local(2026, 11, 13, 22, 30)
    overridden = next_slots(rules, after, 30, count=1, emergency=True, handover_override=True)
    assert overridden[0].start == after


def test_a_slot_ending_exactly_when_asked_is_not_offered():
    """W1: a window that ends at the moment asked about offers nothing more."""
    rules = plain(windows=(Window(1, time(9), time(11)),))
    assert starts(next_slots(rules, local(2026, 11, 10, 11), 30, count=1)) == [datetime(2026, 11, 17, 9)]


# --- check ----------------------------------------------------------------------------------------
def test_the_need_is_duration_plus_smoke_test_plus_rollback_budget():
    """W5, X2, X4: the whole span must fit: deployment, smoke test, rollback budget."""
    rules = plain(windows=EVERY_DAY, smoke_test_minutes=10, rollback_budget_minutes=5)
    assert rules.need(30) == timedelta(minutes=45)
    decision = check(rules, local(2026, 11, 10, 10, 15), 30)
    assert decision.allowed and decision.end == local(2026, 11, 10, 11, 0).astimezone(UTC)
    assert decision.start == local(2026, 11, 10, 10, 15).astimezone(UTC)
    refused = check(rules, local(2026, 11, 10, 10, 16), 30)
    assert refused.as_dict() == {
        "allowed": False,
        "reasons": [
            "window ends 11:00 but deployment (30 min) + 10 min smoke test + 5 min rollback budget need until 11:01"
        ],
    }


def test_a_negative_duration_is_refused():
    """W5: a deployment takes time; a negative duration is an error, not a free pass."""
    with pytest.raises(ValueError, match="cannot be negative"):
        check(plain(windows=EVERY_DAY), local(2026, 11, 10, 9), -1)
    assert check(plain(windows=EVERY_DAY), local(2026, 11, 10, 9), 0).allowed


def test_each_reason_is_named_once():
    """W2: a deployment spanning two Fridays names 'Friday' once."""
    rules = Rules(timezone="Europe/Berlin", quarter_close_days=0, enforced=True, windows=EVERY_DAY)
    reasons = check(rules, local(2026, 11, 10, 9), 10 * 24 * 60).reasons
    assert reasons.count("Friday") == 1


def test_an_emergency_ignores_windows_fridays_freezes_quarter_closes_and_holidays():
    """W6: the emergency path is outside the windows, loudly audited elsewhere; handovers still count."""
    peak = Freeze("Peak", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 10, tzinfo=UTC))
    rules = Rules(
        timezone="Europe/Berlin",
        windows=SEED_WINDOWS,
        handovers=SEED_HANDOVERS,
        freezes=(peak,),
        holiday_country="DE",
        holiday_subdivision="BE",
    )
    christmas_friday = local(2026, 12, 25, 10)
    assert set(check(rules, christmas_friday, 30).reasons) >= {
        "Friday",
        "freeze: Peak",
        "freeze: Q4 close (last 10 days of the quarter)",
        "public holiday: Christmas Day",
    }
    assert check(rules, christmas_friday, 30, emergency=True).as_dict() == {"allowed": True, "reasons": []}
    assert check(rules, local(2026, 12, 25, 13, 45), 30, emergency=True).reasons == [
        "shift handover 14:00 ±30 min"
    ]
    assert check(rules, local(2026, 12, 25, 13, 45), 30, emergency=True, handover_override=True).allowed


def test_an_unenforced_calendar_decides_nothing():
    """W1: DEV and UAT take deployments at any time; the decision still spans the deployment."""
    rules = Rules(timezone="Europe/Berlin", enforced=False)
    decision = check(rules, local(2026, 11, 13, 14), 30)
    assert (decision.allowed, decision.reasons) == (True, [])
    assert decision.end - decision.start == timedelta(minutes=60)


# --- windows, handovers, quarter closes, holidays ---------------------------------------------------
def test_a_window_past_midnight_belongs_to_the_day_it_opens():
    """W1: a night window Monday 22:00–02:00 holds Monday 23:00 and Tuesday 01:00, not Tuesday 03:00."""
    rules = plain(windows=(Window(0, time(22), time(2)),), smoke_test_minutes=0, rollback_budget_minutes=0)
    assert check(rules, local(2026, 11, 9, 23), 30).allowed
    assert check(rules, local(2026, 11, 10, 1), 30).allowed
    assert not check(rules, local(2026, 11, 10, 1, 31), 30).allowed
    assert check(rules, local(2026, 11, 10, 3), 30).reasons == [
        "no deployment window on Tuesdays (windows: Mon 22:00–02:00)"
    ]


def test_a_handover_blocks_its_buffer_on_both_sides():
    """W3: handover 14:00 ±30 min: 13:30–14:30 is blocked, its edges are free."""
    rules = plain(windows=EVERY_DAY + (Window(1, time(12), time(16)),), handovers=(Handover(time(14), 30),))
    ok = dict(smoke_test_minutes=0, rollback_budget_minutes=0)
    rules = Rules(**{**rules.__dict__, **ok})
    assert check(rules, local(2026, 11, 10, 13), 30).allowed  # ends 13:30, at the buffer's edge
    assert not check(rules, local(2026, 11, 10, 13, 1), 30).allowed
    assert not check(rules, local(2026, 11, 10, 14, 29), 1).allowed
    assert check(rules, local(2026, 11, 10, 14, 30), 30).allowed
    assert check(rules, local(2026, 11, 10, 14), 30).reasons == ["shift handover 14:00 ±30 min"]


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        (date(2026, 3, 21), False),
        (date(2026, 3, 22), True),
        (date(2026, 3, 31), True),
        (date(2026, 4, 1), False),
        (date(2026, 6, 20), False),
        (date(2026, 6, 21), True),
        (date(2026, 9, 21), True),
        (date(2026, 12, 21), False),
        (date(2026, 12, 22), True),
        (date(2026, 12, 31), True),
        (date(2027, 1, 1), False),
    ],
)
def test_the_quarter_close_is_the_last_ten_days(day, closed):
    """W4: end of quarter is a freeze: the last N days of March, June, September and December."""
    assert calendar._quarter_close(day, 10) is closed
    assert calendar._quarter_close(day, 0) is False


def test_the_quarter_close_names_its_quarter():
    """W4: the reason says which quarter closes and how many days the freeze lasts."""
    rules = Rules(timezone="Europe/Berlin", windows=EVERY_DAY, block_fridays=False, quarter_close_days=3)
    assert check(rules, local(2026, 6, 29, 9), 30).reasons == [
        "freeze: Q2 close (last 3 days of the quarter)"
    ]
    assert check(rules, local(2026, 6, 27, 9), 30).allowed
    assert check(rules, local(2026, 12, 30, 9), 30).reasons == [
        "freeze: Q4 close (last 3 days of the quarter)"
    ]


def test_holidays_by_country_and_region_in_any_case():
    """W4: public holidays of the site's country and region (Berlin has Women's Day, Bavaria has not)."""
    berlin = plain(windows=EVERY_DAY, holiday_country="de", holiday_subdivision="be")
    bavaria = plain(windows=EVERY_DAY, holiday_country="DE", holiday_subdivision="BY")
    womens_day = local(2026, 3, 9, 9) - timedelta(days=1)  # Sunday 8 March 2026
    assert calendar.holiday_name(berlin, womens_day.date()) == "Women's Day"
    assert calendar.holiday_name(bavaria, womens_day.date()) is None
    assert calendar.holiday_name(plain(), womens_day.date()) is None
    assert calendar.holiday_name(plain(holiday_country="XX"), womens_day.date()) is None


def test_the_windows_are_described_as_a_person_reads_them():
    """W1: the windows in one line: days grouped, times in order."""
    assert plain(windows=SEED_WINDOWS).describe_windows() == "Tue, Wed, Thu 09:00–11:00, 14:00–16:00"
    mixed = (Window(4, time(8), time(9)), Window(0, time(8), time(9)), Window(0, time(13), time(14)))
    assert plain(windows=mixed).describe_windows() == "Mon, Fri 08:00–09:00; Mon 13:00–14:00"
    assert plain().describe_windows() == "none"


def test_day_bounds_are_local_midnights():
    """W1: a plant day runs from local midnight to local midnight (23 or 25 hours on DST days)."""
    lo, hi = calendar.day_bounds(date(2026, 10, 25), BERLIN)
    assert (lo, hi) == (datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC))


def test_free_intervals_are_the_windows_minus_the_blocks():
    """W1, W3: Tuesday's windows less the 14:00 handover, in UTC."""
    rules = plain(windows=SEED_WINDOWS, handovers=SEED_HANDOVERS)
    free = calendar.free_intervals(rules, local(2026, 11, 10, 0), local(2026, 11, 11, 0))
    assert free == [
        (local(2026, 11, 10, 9).astimezone(UTC), local(2026, 11, 10, 11).astimezone(UTC)),
        (local(2026, 11, 10, 14, 30).astimezone(UTC), local(2026, 11, 10, 16).astimezone(UTC)),
    ]


def test_each_block_says_what_kind_it_is():
    """W2–W4: the change calendar and the iCal feed colour a block by its kind."""
    peak = Freeze("Peak", datetime(2026, 12, 24, 6, tzinfo=UTC), datetime(2026, 12, 24, 8, tzinfo=UTC))
    rules = Rules(
        timezone="Europe/Berlin",
        handovers=(Handover(time(6), 30),),
        freezes=(peak,),
        holiday_country="DE",
        holiday_subdivision="BE",
    )
    found = calendar.blocks_between(rules, local(2026, 12, 25, 5), local(2026, 12, 25, 7))
    assert {(b.kind, b.reason) for b in found} == {
        ("friday", "Friday"),
        ("quarter", "freeze: Q4 close (last 10 days of the quarter)"),
        ("holiday", "public holiday: Christmas Day"),
        ("handover", "shift handover 06:00 ±30 min"),
    }
    frozen = calendar.blocks_between(rules, local(2026, 12, 24, 7), local(2026, 12, 24, 8))
    assert ("freeze", "freeze: Peak") in {(b.kind, b.reason) for b in frozen}


def test_a_long_quarter_close_names_its_quarter_from_the_first_month():
    """W4: with an 80-day quarter close, 20 January is already in the Q1 freeze."""
    rules = Rules(timezone="Europe/Berlin", windows=EVERY_DAY, block_fridays=False, quarter_close_days=80)
    assert check(rules, local(2026, 1, 20, 9), 30).reasons == [
        "freeze: Q1 close (last 80 days of the quarter)"
    ]
