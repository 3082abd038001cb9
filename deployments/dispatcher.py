"""The dispatcher: starts a due deployment within a second of its booked time (issue 20, E4).

The database stays the truth: `engine.dispatch()` claims due rows with `skip_locked`, so two
dispatchers (two beats) never start one deployment twice. What changes is *when* it is asked. Beat's
periodic `dispatch_deployments` (every DEPLOYMENT_DISPATCH_SECONDS) stays as the safety net; beside it
each beat process runs this loop in a thread, which

- sleeps until the next due time it reads from the database (a booked start, a smoke test's T+15),
  but never longer than DEPLOYMENT_DISPATCH_POLL_SECONDS (1 s), so a change it was not told about
  (SQLite, a lost notification) is seen within a second;
- on PostgreSQL, LISTENs on a channel that a booking, a deploy-now or a rollback request NOTIFYs in
  its own transaction (`wake()`): delivered at commit, so the loop re-reads the next due time at once.

No ETA or countdown is given to Celery (CELERY.md 1): the waiting happens here, against the row.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Min, Q

from core import clock
from deployments import engine
from deployments.models import Deployment, DeploymentState
from deployments.states import IN_PROGRESS

logger = logging.getLogger(__name__)
CHANNEL = "pcc_deployments_due"


def wake() -> None:
    """Tell every listening dispatcher that a due time changed, when the current transaction commits
    (PostgreSQL's NOTIFY is transactional). Nothing to do on SQLite: the loop polls every second."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def next_due(now: datetime) -> datetime | None:
    """The earliest time a row becomes due that `dispatch()` could claim: a booked start or an
    in-progress deployment's next action, of rows no worker holds (leased rows come due again when
    their lease runs out; the poll finds those)."""
    unleased = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    not_recently_sent = Q(dispatched_at__isnull=True) | Q(
        dispatched_at__lt=now - timedelta(seconds=settings.DEPLOYMENT_REDISPATCH_SECONDS)
    )
    found = (
        Deployment.objects.filter(unleased, not_recently_sent)
        .filter(Q(state=DeploymentState.SCHEDULED) | Q(state__in=IN_PROGRESS, next_action_at__isnull=False))
        .aggregate(
            booked=Min("scheduled_start", filter=Q(state=DeploymentState.SCHEDULED)),
            action=Min("next_action_at", filter=Q(state__in=IN_PROGRESS)),
        )
    )
    times = [t for t in (found["booked"], found["action"]) if t is not None]
    return min(times) if times else None


def wait_seconds(now: datetime, due: datetime | None, poll: float) -> float:
    """How long to sleep: until the next due time, at most `poll`; 0 when something is due."""
    if due is None:
        return poll
    return max(0.0, min(poll, (due - now).total_seconds()))


class _Listener:
    """A dedicated autocommit connection LISTENing on CHANNEL (PostgreSQL only)."""

    def __init__(self) -> None:
        self.conn = None

    def open(self) -> None:
        if connection.vendor != "postgresql" or self.conn is not None:
            return
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        self.conn = psycopg.connect(**params, autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, seconds: float, stop: threading.Event) -> None:
        if self.conn is None:
            stop.wait(seconds)
            return
        # Returns at the first notification, or after `seconds` (psycopg >= 3.2).
        for _note in self.conn.notifies(timeout=seconds, stop_after=1):
            pass

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def serve(stop: threading.Event, *, poll: float | None = None, on_dispatch=None) -> None:
    """The loop: dispatch what is due, sleep until the next due time or a wake-up, again until `stop`."""
    poll = float(settings.DEPLOYMENT_DISPATCH_POLL_SECONDS if poll is None else poll)
    listener = _Listener()
    logger.info(
        "dispatcher: started; polls every %.1f s%s",
        poll,
        f", wakes on NOTIFY {CHANNEL}" if connection.vendor == "postgresql" else "",
    )
    try:
        while not stop.is_set():
            try:
                listener.open()
                claimed = engine.dispatch()
                if on_dispatch is not None and claimed:
                    on_dispatch(claimed)
                now = clock.now()
                pause = wait_seconds(now, next_due(now), poll)
                if claimed and pause == 0:
                    continue  # more than one batch due: claim the next at once
                listener.wait(pause if pause > 0 else 0.05, stop)
            except Exception:  # the database or the listener's connection went away: never die, retry
                logger.warning(
                    "dispatcher: database unavailable; trying again in %.0f s", poll, exc_info=True
                )
                listener.close()
                close_old_connections()
                stop.wait(poll)
    finally:
        listener.close()
        connection.close()


def start_in_thread(name: str = "deployment-dispatcher") -> tuple[threading.Thread, threading.Event]:
    """Run `serve` in a daemon thread (beat's process starts one; see changecontrol/celery.py)."""
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread, stop
