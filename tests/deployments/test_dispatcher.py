"""The dispatcher (issue 20 item 1, E4): sleeps until the next due time, wakes on NOTIFY, never
starts a deployment twice. Lateness itself is measured in bench/engine_bench.py, not here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from core import clock
from deployments import dispatcher
from deployments.models import Deployment, DeploymentState
from tests.deployments.test_engine_workers import deployments
from tests.workers import wait_until

S = DeploymentState
NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_it_sleeps_until_the_next_due_time_but_never_longer_than_the_poll():
    assert dispatcher.wait_seconds(NOON, None, 1.0) == 1.0
    assert dispatcher.wait_seconds(NOON, NOON - timedelta(seconds=5), 1.0) == 0.0
    assert dispatcher.wait_seconds(NOON, NOON + timedelta(milliseconds=300), 1.0) == pytest.approx(0.3)
    assert dispatcher.wait_seconds(NOON, NOON + timedelta(minutes=15), 1.0) == 1.0


@pytest.mark.django_db
def test_the_next_due_time_is_of_a_row_dispatch_could_claim(cast, site_a, settings):
    settings.DEPLOYMENT_REDISPATCH_SECONDS = 60
    now = clock.now()
    booked, smoke, leased, sent, done = deployments(cast, site_a, 5, {"smoke_delay_seconds": 0})
    Deployment.objects.filter(pk=booked.pk).update(scheduled_start=now + timedelta(minutes=10))
    Deployment.objects.filter(pk=smoke.pk).update(
        state=S.VERIFYING, scheduled_start=now - timedelta(hours=1), next_action_at=now + timedelta(minutes=3)
    )
    Deployment.objects.filter(pk=leased.pk).update(
        scheduled_start=now - timedelta(hours=1),
        lease_owner="w1",
        lease_expires_at=now + timedelta(minutes=2),
    )
    Deployment.objects.filter(pk=sent.pk).update(
        scheduled_start=now - timedelta(hours=1), dispatched_at=now - timedelta(seconds=5)
    )
    Deployment.objects.filter(pk=done.pk).update(state=S.SUCCEEDED, scheduled_start=now - timedelta(hours=2))
    # The smoke test's T+15 comes first; the leased, just-sent and finished rows are not waited for.
    assert dispatcher.next_due(now) == now + timedelta(minutes=3)
    Deployment.objects.filter(pk=smoke.pk).update(state=S.SUCCEEDED)
    assert dispatcher.next_due(now) == now + timedelta(minutes=10)
    Deployment.objects.filter(pk=booked.pk).update(state=S.CANCELLED)
    assert dispatcher.next_due(now) is None
    # A sent task that nobody started comes due again after the redispatch time (a flushed broker).
    assert dispatcher.next_due(now + timedelta(seconds=61)) is not None


def _serving(poll: float, claimed: list):
    stop = threading.Event()
    thread = threading.Thread(
        target=dispatcher.serve, args=(stop,), kwargs={"poll": poll, "on_dispatch": claimed.append}
    )
    thread.start()
    return thread, stop


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_wakes_at_the_due_time_and_on_a_notify_not_at_its_poll(cast, site_a, settings):
    """With a 10-minute poll the loop still starts a row at its due time (it slept until then) and a
    row booked while it sleeps (PostgreSQL NOTIFY at commit); each exactly at or after its start."""
    settings.DEPLOYMENT_REDISPATCH_SECONDS = 600
    first, second = deployments(cast, site_a, 2, {"smoke_delay_seconds": 0})
    soon = clock.now() + timedelta(milliseconds=500)
    Deployment.objects.filter(pk=first.pk).update(scheduled_start=soon)
    Deployment.objects.filter(pk=second.pk).update(scheduled_start=clock.now() + timedelta(minutes=20))
    claimed: list[list[int]] = []
    thread, stop = _serving(600.0, claimed)
    try:
        assert wait_until(lambda: [first.pk] in claimed, timeout=60)
        row = Deployment.objects.get(pk=first.pk)
        assert row.dispatched_at >= row.scheduled_start == soon
        with transaction.atomic():  # booked for now while the loop sleeps on its 10-minute poll
            Deployment.objects.filter(pk=second.pk).update(scheduled_start=clock.now())
            dispatcher.wake()
        assert wait_until(lambda: [second.pk] in claimed, timeout=60)
    finally:
        stop.set()
        with transaction.atomic():
            dispatcher.wake()  # let it see `stop` at once
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert claimed == [[first.pk], [second.pk]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_start_each_deployment_once(cast, site_a, settings):
    settings.DEPLOYMENT_REDISPATCH_SECONDS = 600
    items = deployments(cast, site_a, 30, {"smoke_delay_seconds": 0})
    start = clock.now() + timedelta(milliseconds=300)
    Deployment.objects.filter(pk__in=[d.pk for d in items]).update(scheduled_start=start)
    claimed_a: list[list[int]] = []
    claimed_b: list[list[int]] = []
    serving = [_serving(0.2, claimed_a), _serving(0.2, claimed_b)]
    try:
        assert wait_until(
            lambda: (
                Deployment.objects.filter(pk__in=[d.pk for d in items], dispatched_at__isnull=False).count()
                == len(items)
            ),
            timeout=60,
        )
    finally:
        for _thread, stop in serving:
            stop.set()
        for thread, _stop in serving:
            thread.join(timeout=30)
    a = [pk for batch in claimed_a for pk in batch]
    b = [pk for batch in claimed_b for pk in batch]
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(d.pk for d in items)
    connection.close()
