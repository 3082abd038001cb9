"""The Deployment's lifecycle, declared once (DESIGN principle 3): its states, which state may follow
which, and which states hold a slot or are final. `move()` is the only code that changes
`Deployment.state`; the engine, scheduling and the pages all go through it.

Lock order (DESIGN "Lock order", workflow/transitions.py): the RFC row first, then the deployment.
`move()` takes both in that order, so a caller that holds neither, or both, is safe.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import StateConflict


class DeploymentState(models.TextChoices):
    SCHEDULED = "scheduled", gettext_lazy("Scheduled")
    RUNNING = "running", gettext_lazy("Running")
    VERIFYING = "verifying", gettext_lazy("Verifying")
    SUCCEEDED = "succeeded", gettext_lazy("Succeeded")
    ROLLING_BACK = "rolling_back", gettext_lazy("Rolling back")
    ROLLED_BACK = "rolled_back", gettext_lazy("Rolled back")
    ROLLBACK_FAILED = "rollback_failed", gettext_lazy("Rollback failed")
    FAILED = "failed", gettext_lazy("Failed")
    CANCELLED = "cancelled", gettext_lazy("Cancelled")
    MISSED = "missed", gettext_lazy("Missed")


S = DeploymentState

ALLOWED: dict[str, frozenset[str]] = {
    # Before the start: a worker starts it, or finds its window gone (W5), or the gates refuse it
    # before anything is touched (C5); a person cancels it.
    S.SCHEDULED: frozenset({S.RUNNING, S.MISSED, S.FAILED, S.CANCELLED}),
    # Forward steps: wait for the smoke test (X2), finish, or roll back on any failure (X4).
    S.RUNNING: frozenset({S.VERIFYING, S.SUCCEEDED, S.ROLLING_BACK}),
    S.VERIFYING: frozenset({S.SUCCEEDED, S.ROLLING_BACK}),
    # A rollback ends restored, failed (a person is alerted), or failed with nothing applied.
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.ROLLBACK_FAILED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.ROLLBACK_FAILED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.MISSED: frozenset(),
}

TERMINAL = frozenset(state for state, targets in ALLOWED.items() if not targets)
# Holds its slot on the environment's calendar.
ACTIVE = (S.SCHEDULED, S.RUNNING, S.VERIFYING, S.ROLLING_BACK)
# A worker owns it (under a lease) until it ends.
IN_PROGRESS = (S.RUNNING, S.VERIFYING, S.ROLLING_BACK)
# On the change calendar and its feed: every booking but a cancelled one — past ones with their outcome.
ON_CALENDAR = tuple(state for state in S if state != S.CANCELLED)
# Ended badly: rolled back (restored or not) or failed.
FAILED_ENDS = frozenset({S.ROLLED_BACK, S.ROLLBACK_FAILED, S.FAILED})
# A release manager may ask for a rollback.
ROLLBACK_REQUESTABLE = (S.RUNNING, S.VERIFYING)


class IllegalMove(StateConflict):
    """A state that may not follow the current one: a bug or a race, never silently accepted."""


Follower = Callable[..., None]
_followers: list[Follower] = []


def follow_with(follower: Follower) -> Callable[[], None]:
    """Register what follows a deployment's move (the RFC workflow registers itself at start-up);
    registering twice changes nothing. Returns the function that unregisters it.

    The follower runs inside the move's transaction, after the RFC and the deployment are locked.
    """
    if follower not in _followers:
        _followers.append(follower)
    return lambda: _followers.remove(follower) if follower in _followers else None


def may_move(source: str, target: str) -> bool:
    return target in ALLOWED.get(source, frozenset())


def move(deployment, target: str, *, actor=None, audit: Callable[[], None] | None = None, **fields) -> None:
    """Change `deployment` to `target` with `fields`, or raise IllegalMove; write its audit event
    (`audit`), then let the RFC follow, all in one transaction."""
    rfcs = type(deployment)._meta.get_field("rfc").related_model.objects
    with transaction.atomic():
        rfcs.select_for_update().filter(pk=deployment.rfc_id).first()
        current = (
            type(deployment).objects.select_for_update().values_list("state", flat=True).get(pk=deployment.pk)
        )
        if not may_move(current, target):
            raise IllegalMove(
                _("A deployment that is %(current)s cannot become %(target)s.")
                % {"current": S(current).label.lower(), "target": S(target).label.lower()}
            )
        deployment.state = target
        for name, value in fields.items():
            setattr(deployment, name, value)
        deployment.save(update_fields=["state", *fields])
        if audit is not None:
            audit()
        for follower in _followers:
            follower(deployment, current, target, actor=actor)
