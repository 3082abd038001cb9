"""Database rows are the truth, the broker carries nudges (DESIGN principle 1): the two helpers every
outbox-style job uses — wake a worker after commit, and take a queued row exactly once."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

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
