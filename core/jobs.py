"""Database rows are the truth, the broker carries nudges (DESIGN principle 1): the two helpers every
outbox-style job uses — wake a worker after commit, and take a queued row exactly once."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.db import transaction
from django.db.models import F

from core import clock

logger = logging.getLogger(__name__)


def nudge(task: str, *args) -> None:
    """Wake a worker once the current transaction commits. A broker outage never fails the caller:
    the periodic sweep finds the row anyway."""

    def send() -> None:
        try:
            current_app.send_task(task, args=list(args))
        except Exception:
            logger.warning("%s nudge not sent; the periodic sweep runs it", task, exc_info=True)

    transaction.on_commit(send)


def claim(model, pk: int, *, queued: str = "queued", running: str = "running"):
    """Queued → running exactly once, whoever asks (a duplicate delivery, the sweep); None if taken."""
    with transaction.atomic():
        row = model.objects.select_for_update(skip_locked=True).filter(pk=pk, state=queued).first()
        if row is None:
            return None
        row.state, row.started_at = running, clock.now()
        row.save(update_fields=["state", "started_at"])
    return row


def backoff_seconds(attempts: int, base: int, cap: int) -> int:
    """The wait after the `attempts`-th failed try: base, 2×base, 4×base … up to `cap`."""
    return min(base * 2 ** max(attempts - 1, 0), cap)


def claim_due(model, *, limit: int, claim_seconds: int, related: tuple[str, ...] = ()) -> list:
    """Queued rows due now that no other worker holds (SKIP LOCKED), their attempt counted and their
    claim held for `claim_seconds`: a worker that dies mid-try leaves them to be tried again then."""
    now = clock.now()
    with transaction.atomic():
        rows = list(
            model.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state="queued", next_attempt_at__lte=now)
            .select_related(*related)
            .order_by("next_attempt_at", "id")[:limit]
        )
        if rows:
            model.objects.filter(pk__in=[row.pk for row in rows]).update(
                attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=claim_seconds)
            )
    for row in rows:
        row.attempts += 1
    return rows
