"""The dashboard's figures (issue 17 item 1) against a hand-built plant history with known answers:
DORA's four keys, success/rollback/emergency rates, approval latency per step and role, schedule
adherence and gate refusals — per site in its own zone, across sites in UTC, for an empty period,
and with a constant number of queries whatever the number of RFCs."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.states import DeploymentState as S
from releases.models import Rfc
from tests.reports.history import NOW, at, change, deployed, many
from workflow import metrics

pytestmark = pytest.mark.django_db
BERLIN, CHICAGO, UTC_ZONE = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Chicago"), ZoneInfo("UTC")


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def november(zone):
    return metrics.period("2026-11-01", "2026-11-30", zone)


def test_dora_keys_at_one_site_in_its_own_zone(history, site_a):
    board = metrics.dashboard([site_a], november(BERLIN))
    assert board.outcomes["succeeded"] == 1  # the 23:30 UTC one ended on 1 December in Berlin
    assert board.outcomes["rolled_back"] == 1
    assert board.outcomes["failed"] == 1
    assert board.outcomes["started"] == 3
    assert board.frequency == pytest.approx(1 / 30)
    assert board.failure_rate == pytest.approx(2 / 3)
    assert board.success_rate == pytest.approx(1 / 3)
    assert board.rollback_rate == pytest.approx(1 / 3)
    assert board.lead_time.count == 1
    assert board.lead_time.median == board.lead_time.mean == timedelta(days=2, hours=23, minutes=30)
    assert board.restore.count == 1
    assert board.restore.median == board.restore.mean == timedelta(minutes=30)
    # Five submitted in Berlin's November (23:30 UTC on the 29th is the 30th there), one an emergency.
    assert (board.rfcs_submitted, board.emergencies) == (5, 1)
    assert board.emergency_ratio == pytest.approx(0.2)


def test_schedule_adherence_counts_by_the_booked_start(history, site_a):
    board = metrics.dashboard([site_a], november(BERLIN))
    got = {k: board.outcomes[k] for k in ("booked", "on_time", "late", "missed", "refused", "cancelled")}
    # The 30 November 23:00 UTC booking starts on 1 December in Berlin: not in November.
    assert got == {"booked": 4, "on_time": 2, "late": 1, "missed": 1, "refused": 0, "cancelled": 0}
    assert board.adherence == pytest.approx(2 / 4)


def test_series_puts_each_deployment_on_its_local_day(history, site_a, site_b):
    berlin = metrics.dashboard([site_a], november(BERLIN)).series
    assert (
        len(berlin) == 30
        and berlin[0]["day"] == date(2026, 11, 1)
        and berlin[-1]["day"] == date(2026, 11, 30)
    )
    busy = {
        row["day"]: (row["succeeded"], row["rolled_back"], row["failed"])
        for row in berlin
        if any(row[k] for k in ("succeeded", "rolled_back", "failed"))
    }
    assert busy == {
        date(2026, 11, 5): (1, 0, 0),
        date(2026, 11, 12): (0, 1, 0),
        date(2026, 11, 21): (0, 0, 1),
    }
    chicago = metrics.dashboard([site_b], november(CHICAGO)).series
    assert [row["day"] for row in chicago if row["succeeded"]] == [date(2026, 11, 30)]
    across = metrics.dashboard([site_a, site_b], november(UTC_ZONE))
    assert [row["day"] for row in across.series if row["succeeded"]] == [
        date(2026, 11, 5),
        date(2026, 11, 30),
    ]
    assert across.outcomes["succeeded"] == 2


def test_across_sites_each_site_has_its_row(history, site_a, site_b):
    board = metrics.dashboard([site_a, site_b], november(UTC_ZONE))
    rows = {row["code"]: row for row in board.per_site}
    assert rows["PLA"]["started"] == 4 and rows["PLA"]["rolled_back"] == 1
    assert rows["PLA"]["failure_rate"] == pytest.approx(2 / 4)
    assert "PLB" not in rows  # its only deployment ended on 1 December in UTC


def test_approval_latency_per_step_and_role(history, site_a, site_b):
    rows = metrics.dashboard([site_a], november(BERLIN)).approvals
    assert [(r["step"], r["role"], r["count"], r["mean"], r["longest"]) for r in rows] == [
        (1, "it_manager", 2, timedelta(hours=4), timedelta(hours=6)),
        (2, "operations_manager", 1, timedelta(hours=24), timedelta(hours=24)),
    ]
    across = metrics.dashboard([site_a, site_b], november(UTC_ZONE)).approvals
    assert across[0]["count"] == 3 and across[0]["mean"] == timedelta(hours=3)


def test_gate_refusals_by_frequency(history, site_a, site_b):
    gates = metrics.dashboard([site_a], november(BERLIN)).gates
    assert gates == [
        {"gate": "UAT sign-off", "count": 2, "rfcs": 1},
        {"gate": "Deployment window", "count": 1, "rfcs": 1},
    ]
    across = metrics.dashboard([site_a, site_b], november(UTC_ZONE)).gates
    assert across[0] == {"gate": "Deployment window", "count": 2, "rfcs": 2}


def test_an_empty_period_has_no_rates_rather_than_zero_divisions(history, site_a):
    board = metrics.dashboard([site_a], metrics.period("2026-06-01", "2026-06-30", BERLIN))
    assert board.outcomes["started"] == 0 and board.frequency == 0
    assert board.failure_rate is None and board.success_rate is None and board.adherence is None
    assert board.emergency_ratio is None
    assert board.lead_time == metrics.Stats() and board.restore == metrics.Stats()
    assert board.approvals == [] and board.gates == []
    assert len(board.series) == 30 and not any(row["succeeded"] for row in board.series)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two(people, site_a):
    for n, hours in enumerate((1, 2, 4, 10)):
        item = change(people, site_a, f"2026-11-0{n + 1}T00:00")
        deployed(
            item,
            site_a,
            S.ROLLED_BACK,
            f"2026-11-0{n + 1}T01:00",
            started=f"2026-11-0{n + 1}T01:00",
            rollback=f"2026-11-0{n + 1}T02:00",
            finished=(at(f"2026-11-0{n + 1}T02:00") + timedelta(hours=hours)).isoformat()[:19],
        )
    restore = metrics.dashboard([site_a], november(BERLIN)).restore
    assert restore.count == 4
    assert restore.median == timedelta(hours=3)
    assert restore.mean == timedelta(hours=4, minutes=15)


def test_long_periods_are_charted_by_week(history, site_a):
    board = metrics.dashboard([site_a], metrics.period("2026-09-01", "2026-11-30", BERLIN))
    assert board.period.bucket == "week"
    assert board.series[0]["day"] == date(2026, 8, 31)  # the Monday of the first week
    weeks = {row["day"]: row for row in board.series}
    assert weeks[date(2026, 11, 2)]["succeeded"] == 1
    assert weeks[date(2026, 11, 9)]["rolled_back"] == 1


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        ("2026-11-31", "", "since"),
        ("yesterday", "", "since"),
        ("2026-11-10", "2026-11-01", "until"),
        ("2020-01-01", "2026-11-30", "since"),
        ("9999-01-01", "", "since"),
        ("2026-11-01\x00", "x\r\n", "until"),
    ],
)
def test_a_period_that_cannot_be_read_is_refused_with_a_sentence(since, until, field):
    with pytest.raises(ValidationError) as refused:
        metrics.period(since, until, BERLIN)
    assert field in refused.value.message_dict


def test_the_default_period_is_the_last_thirty_days_in_the_zone():
    p = metrics.period(None, None, BERLIN)
    assert (p.since, p.until, p.days) == (date(2026, 11, 11), date(2026, 12, 10), 30)


def test_the_rfcs_behind_each_figure_are_those_it_counts(history, site_a):
    p = november(BERLIN)
    board = metrics.dashboard([site_a], p)

    def numbers(metric):
        return set(Rfc.objects.filter(metrics.behind(metric, [site_a.pk], p)).values_list("pk", flat=True))

    assert numbers("succeeded") == {history["ok"].pk}
    assert numbers("rolled_back") == {history["rolled"].pk}
    assert numbers("failed") == {history["failed"].pk}
    assert numbers("missed") == {history["missed"].pk}
    assert numbers("late") == {history["rolled"].pk}
    assert numbers("emergency") == {history["failed"].pk}
    assert len(numbers("submitted")) == board.rfcs_submitted
    assert len(numbers("on_time")) == board.outcomes["on_time"]
    assert numbers("gate:UAT sign-off") == {history["missed"].pk}
    assert numbers("approval:2:operations_manager") == {history["rolled"].pk}
    with pytest.raises(ValidationError):
        metrics.behind("nonsense", [site_a.pk], p)


def test_queries_per_dashboard_do_not_grow_with_the_rfcs(people, site_a, site_b):
    def count(p, compute=metrics.dashboard):
        with CaptureQueriesContext(connection) as seen:
            compute([site_a, site_b], p)
        return len(seen)

    p = metrics.period("2026-11-01", "2027-02-28", UTC_ZONE)
    many(people, site_a, 10)
    few, few_keys = count(p), count(p, metrics.figures)
    many(people, site_b, 1000)
    board = metrics.dashboard([site_a, site_b], p)
    assert board.outcomes["started"] == 1010
    assert count(p) == few <= 11
    # The key figures alone (the managers' home page): the same numbers, fewer queries.
    keys = metrics.figures([site_a, site_b], p)
    assert vars(keys) == {name: getattr(board, name) for name in vars(keys)}
    assert count(p, metrics.figures) == few_keys <= 6
