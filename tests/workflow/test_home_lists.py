"""The home page's lists (E9, workflow/inbox.py) over RFCs in every state at several sites: the rows and
their order are those the rules name (open RFCs of the author, ended ones to review, approved ones to
schedule, bookings running and next, recent failures), for a release manager everywhere, a release
manager of one site who sees another, an author and a manager of one site; and on PostgreSQL each
long list is read in order from an index that holds just its states, never sorted whole."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from guardian.shortcuts import assign_perm

from core.roles import Role
from deployments.models import Deployment
from deployments.states import ACTIVE, FAILED_ENDS
from deployments.states import DeploymentState as D
from environments import access
from releases.models import Impact, Rfc
from releases.states import ENDED_STATES, OPEN_STATES, RfcState
from tests import factories
from tests.conftest import make_site, make_user
from workflow.inbox import FAILURE_DAYS, ROWS, inbox

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def plant(people, site_a, site_b):
    """90 RFCs over every state at PLA, PLB, both or PLC (which the site-bound users do not see), each
    changed at its own time, with bookings in every deployment state."""
    site_c = make_site("PLC")
    rm_a = make_user("rm_a", Role.RELEASE_MANAGER, site=site_a)
    assign_perm(Role.DEVELOPER.codename, rm_a, site_b)  # sees PLB too, without managing releases there
    access.forget(rm_a)
    dev, other = people["dev"], make_user("dev2", Role.DEVELOPER)
    release = factories.release(dev, "1.0.1")
    rng = random.Random(20)
    wheres = [(site_a,), (site_b,), (site_a, site_b), (site_c,)]
    states = list(RfcState)
    rfcs = Rfc.objects.bulk_create(
        [
            Rfc(
                number=f"RFC-2026-{n:05d}",
                title=f"Change {n}",
                description="Printers on line 2 time out under load.",
                release=release,
                change_class="patch",
                rollback_plan="Redeploy the previous version",
                author=(dev, other)[n % 2],
                # Most in the states the long lists read, the rest spread over every other state.
                state=(RfcState.APPROVED, RfcState.DEPLOYED, RfcState.FAILED, states[n % len(states)])[n % 4],
            )
            for n in range(90)
        ]
    )
    rfcs = list(Rfc.objects.filter(number__startswith="RFC-2026-").order_by("number"))
    where = {}
    for rfc in rfcs:
        where[rfc.pk] = rng.choice(wheres)
        Impact.objects.bulk_create([Impact(rfc=rfc, site=site, lines=["Line 1"]) for site in where[rfc.pk]])
    minutes = rng.sample(range(10_000), len(rfcs))  # each changed at its own time
    for rfc, ago in zip(rfcs, minutes, strict=True):
        Rfc.objects.filter(pk=rfc.pk).update(updated_at=NOW - timedelta(minutes=ago))
    starts = iter(rng.sample(range(1, 5_000), len(rfcs)))
    deployments = []
    for n, rfc in enumerate(rfcs):
        state = list(D)[n % len(D)]
        start = NOW + timedelta(minutes=next(starts) - 2_500)
        ended = state in FAILED_ENDS or state in (D.SUCCEEDED, D.CANCELLED, D.MISSED)
        deployments.append(
            Deployment(
                rfc=rfc,
                environment=where[rfc.pk][0].environments.get(tier="PROD"),
                scheduled_start=start,
                scheduled_end=start + timedelta(minutes=30),
                duration_minutes=30,
                scheduled_by=people["releasemgr"],
                state=state,
                finished_at=NOW - timedelta(days=rng.randrange(0, 2 * FAILURE_DAYS), minutes=n)
                if ended
                else None,
            )
        )
    Deployment.objects.bulk_create(deployments)
    return {
        "rm_a": rm_a,
        "dev": dev,
        "releasemgr": people["releasemgr"],
        "itmanager_a": people["itmanager_a"],
    }


def expected(user) -> dict[str, list[int]]:
    """Each list as its rule says, worked out in Python from every row."""
    sites = {s.pk for s in access.visible_sites(user)}
    managed = {s for s in sites if access.has_any_role(user, [Role.RELEASE_MANAGER, Role.ADMIN], s)}
    impacts: dict[int, set[int]] = {}
    for rfc_id, site_id in Impact.objects.values_list("rfc_id", "site_id"):
        impacts.setdefault(rfc_id, set()).add(site_id)
    rfcs = [rfc for rfc in Rfc.objects.all() if impacts.get(rfc.pk, set()) & sites]
    newest = sorted(rfcs, key=lambda rfc: rfc.updated_at, reverse=True)
    lists = {
        "mine": [r.pk for r in newest if r.author_id == user.pk and r.state in OPEN_STATES][:ROWS],
        "ended": [
            r.pk
            for r in newest
            if r.state in ENDED_STATES and (r.author_id == user.pk or impacts[r.pk] & managed)
        ][:ROWS],
        "to_schedule": [],
        "deployments": [],
        "failures": [],
    }
    if access.has_any_role(user, [Role.RELEASE_MANAGER, Role.ADMIN]):
        visible = {r.pk for r in rfcs}
        deployments = [d for d in Deployment.objects.all() if d.rfc_id in visible]
        lists["to_schedule"] = [r.pk for r in newest if r.state == RfcState.APPROVED][:ROWS]
        lists["deployments"] = [
            d.pk for d in sorted(deployments, key=lambda d: d.scheduled_start) if d.state in ACTIVE
        ][:ROWS]
        since = NOW - timedelta(days=FAILURE_DAYS)
        lists["failures"] = [
            d.pk
            for d in sorted(deployments, key=lambda d: (d.finished_at or since, d.pk), reverse=True)
            if d.state in FAILED_ENDS and d.finished_at >= since
        ][:ROWS]
    return lists


def shown(user) -> dict[str, list[int]]:
    box = inbox(user)
    return {
        "mine": [r.pk for r in box.mine],
        "ended": [r.pk for r in box.ended],
        "to_schedule": [r.pk for r in box.to_schedule],
        "deployments": [d.pk for d, _local in box.deployments],
        "failures": [d.pk for d, _local in box.failures],
    }


@pytest.mark.parametrize("who", ["releasemgr", "rm_a", "dev", "itmanager_a"])
def test_each_list_holds_the_rows_its_rule_names_in_order(plant, who):
    user = plant[who]
    want = expected(user)
    assert shown(user) == want
    if who == "releasemgr":  # the long lists are cut at ten: the test sees the order, not just the set
        assert all(len(want[name]) == ROWS for name in ("ended", "to_schedule", "deployments"))
    if who == "rm_a":  # ended at PLB only: listed for its author alone
        assert want["ended"] and want["ended"] != expected(plant["releasemgr"])["ended"]


@pytest.mark.postgres
def test_the_long_lists_are_read_in_order_from_their_own_index(plant):
    """The approved and ended RFCs and the bookings that hold a slot each come from a partial index in
    the list's order, so the database reads until ten rows the user may see, whatever the number of
    RFCs. With sorting and full scans priced out, a plan that had to sort shows a Sort node."""
    plans = _plans(lambda: inbox(plant["releasemgr"]))
    for index in ("rfc_approved_updated_idx", "rfc_ended_updated_idx", "deployment_active_start_idx"):
        using = [plan for plan in plans.values() if index in plan]
        assert using, f"no list reads {index}"
        assert all("Sort" not in plan for plan in using), using


def _plans(call) -> dict[str, str]:
    """The plan of each limited SELECT `call` sends, with sorting and full scans priced out."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    statements = []

    def grab(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(grab):
        call()
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")
        cursor.execute("SET enable_seqscan = off")
        try:
            for sql, params in statements:
                if sql.startswith("SELECT") and " LIMIT " in sql:
                    cursor.execute(f"EXPLAIN {sql}", params)
                    plans[sql] = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_sort")
            cursor.execute("RESET enable_seqscan")
    return plans


@pytest.mark.postgres
def test_the_auditors_emergency_changes_come_from_their_own_index(plant, people):
    """The auditor's home lists the emergency changes of the last 30 days newest first (issue 17): read
    in that order off an index of emergency RFCs alone, not sorted out of every submitted RFC."""
    from reports.oversight import ROWS as SHOWN
    from reports.oversight import auditor_home

    rfcs = list(Rfc.objects.order_by("pk"))
    for n, rfc in enumerate(rfcs[:15]):
        rfc.emergency, rfc.submitted_at = True, NOW - timedelta(days=n * 3)  # 10 within 30 days
    Rfc.objects.bulk_update(rfcs[:15], ["emergency", "submitted_at"])
    home = auditor_home(people["auditor"])
    recent = sorted(rfcs[:10], key=lambda r: (r.submitted_at, r.pk), reverse=True)
    assert home.emergency_count == 10
    assert [r.pk for r in home.emergencies] == [r.pk for r in recent][:SHOWN]
    plans = _plans(lambda: auditor_home(people["auditor"]))
    using = [plan for plan in plans.values() if "rfc_emergency_idx" in plan]
    assert using and all("Sort" not in plan for plan in using), plans
