"""Benchmark: one window check and one next-slots search over a year's horizon.

Pure functions, no database: `python bench/calendar_bench.py`. Prints median and p95 timings.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environments.calendar import Freeze, Handover, Rules, Window, check, next_slots  # noqa: E402

WINDOWS = tuple(
    Window(day, datetime.strptime(a, "%H:%M").time(), datetime.strptime(b, "%H:%M").time())
    for day in (1, 2, 3)
    for a, b in (("09:00", "11:00"), ("14:00", "16:00"))
)
HANDOVERS = tuple(Handover(datetime.strptime(t, "%H:%M").time(), 30) for t in ("06:00", "14:00", "22:00"))
START = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def plant(**extra) -> Rules:
    return Rules(
        timezone="Europe/Berlin",
        windows=WINDOWS,
        handovers=HANDOVERS,
        holiday_country="DE",
        holiday_subdivision="BE",
        **extra,
    )


def timed(label: str, func, repeat: int) -> None:
    func()  # warm caches (holidays per year, zoneinfo)
    samples = []
    for _ in range(repeat):
        begin = time.perf_counter()
        result = func()
        samples.append((time.perf_counter() - begin) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<62} median {statistics.median(samples):8.3f} ms   p95 {p95:8.3f} ms   ({result})")


def main() -> None:
    rules = plant()
    timed(
        "check: Tuesday 09:00, 30 min",
        lambda: check(rules, START + timedelta(days=4, hours=1), 30).allowed,
        2000,
    )
    timed(
        "check: Friday 14:10 (three reasons)",
        lambda: len(check(rules, START + timedelta(hours=6, minutes=10), 30).reasons),
        2000,
    )
    timed("next_slots: first 5 after now", lambda: len(next_slots(rules, START, 30, count=5)), 500)
    timed(
        "next_slots: a year of slots (count=320, 60 min)",
        lambda: len(next_slots(rules, START, 30, count=320)),
        50,
    )
    frozen = plant(freezes=(Freeze("All year", START, START + timedelta(days=366)),))
    timed(
        "next_slots: behind a 366-day freeze (searches a year+)",
        lambda: len(next_slots(frozen, START, 30, count=5)),
        50,
    )


if __name__ == "__main__":
    main()
