"""Time-bound role grants (environments.models.TimedRoleGrant) ending by themselves.

An expired grant already counts for nothing (environments/access.py reads the expiry); the sweep
removes the row and records `accounts.grant.expired`, once per grant even with two sweeps at once
(the rows are claimed with SKIP LOCKED and deleted in the same transaction as their event).
"""

from __future__ import annotations

from django.db import transaction

from audit.services import record
from core import clock
from environments.models import TimedRoleGrant


def expire_due(batch: int = 200) -> int:
    """Delete the grants whose time has run out, auditing each; returns how many."""
    done = 0
    while True:
        with transaction.atomic():
            due = list(
                TimedRoleGrant.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("user", "site")
                .filter(expires_at__lte=clock.now())
                .order_by("expires_at", "id")[:batch]
            )
            for grant in due:
                record(
                    "accounts.grant.expired",
                    grant,
                    before=grant.describe(),
                    reason="the grant's time ran out",
                )
            TimedRoleGrant.objects.filter(pk__in=[grant.pk for grant in due]).delete()
        done += len(due)
        if len(due) < batch:
            return done
