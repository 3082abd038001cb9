"""What the portal tells people about: the catalogue of notification events and `emit()`.

Every notification is an effect of a workflow transition or a deployment's move (DESIGN: outcomes
flow up): the workflow calls `emit()` inside the transaction of the act, so a notification exists if
and only if the act committed. `emit()` hands the event to the registered sinks, each of which writes
its own delivery rows in that same transaction (mails in the outbox, webhook deliveries) and is
delivered after the commit, with retries from the database.

Sinks register at start-up (`AppConfig.ready`):
- `SINKS`: called once per event (the people sink resolves recipients and their channels; the
  webhook sink matches each site's webhooks by their event filter).
- `CHANNELS`: how one person is reached on a channel other than mail ("chat" is registered by the
  hooks package); a handler returns False when it cannot reach the person, who then gets mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import gettext_lazy

from core import clock


@dataclass(frozen=True)
class Kind:
    key: str
    label: str  # lazy: read in the reader's language
    urgent: bool = False


# The catalogue. Keys are stable (webhook filters and preferences store them); labels are for people.
KINDS: dict[str, Kind] = {
    k.key: k
    for k in [
        Kind("rfc.submitted", gettext_lazy("RFC submitted for approval")),
        Kind("rfc.approved", gettext_lazy("RFC approved")),
        Kind("rfc.rejected", gettext_lazy("RFC rejected")),
        Kind("rfc.changes_requested", gettext_lazy("Changes requested by an approver")),
        Kind("rfc.scheduled", gettext_lazy("RFC scheduled")),
        Kind("rfc.window_reminder", gettext_lazy("Reminder before the deployment window")),
        Kind("rfc.replanned", gettext_lazy("RFC re-planned after a failure")),
        Kind("rfc.closed", gettext_lazy("RFC closed")),
        Kind("rfc.cancelled", gettext_lazy("RFC cancelled")),
        Kind("rollout.halted", gettext_lazy("Rollout halted by a failure in an earlier ring")),
        Kind("deployment.started", gettext_lazy("Deployment started")),
        Kind("deployment.succeeded", gettext_lazy("Deployment succeeded")),
        Kind("deployment.rolled_back", gettext_lazy("Deployment rolled back")),
        Kind("deployment.failed", gettext_lazy("Deployment failed")),
        Kind("deployment.rollback_failed", gettext_lazy("Rollback failed"), urgent=True),
        Kind("gate.failing", gettext_lazy("A gate newly failing on a scheduled RFC")),
        Kind("review.due", gettext_lazy("Post-implementation review due")),
        Kind("comment.added", gettext_lazy("New comment")),
        Kind("comment.mentioned", gettext_lazy("You were mentioned in a comment")),
    ]
}


@dataclass
class Event:
    kind: Kind
    rfc: object  # releases.models.Rfc
    actor: object | None = None  # the person whose act it reports; None: the portal
    deployment: object | None = None  # deployments.models.Deployment, for deployment events
    data: dict = field(default_factory=dict)  # event-specific facts (reason, rpo, gate, comment …)
    people: dict = field(default_factory=dict)  # extra recipients by audience, e.g. {"mentioned": [user]}
    occurred_at: datetime = field(default_factory=clock.now)

    @property
    def key(self) -> str:
        return self.kind.key


Sink = Callable[[Event], None]
SINKS: list[Sink] = []
CHANNELS: dict[str, Callable[[object, Event], bool]] = {}


def sink(function: Sink) -> Sink:
    """Register a sink (idempotent)."""
    if function not in SINKS:
        SINKS.append(function)
    return function


def emit(key: str, rfc, *, actor=None, deployment=None, data: dict | None = None, people=None) -> Event:
    """Tell everyone concerned, in the caller's transaction. `key` must be in KINDS."""
    event = Event(KINDS[key], rfc, actor, deployment, dict(data or {}), dict(people or {}))
    for each in list(SINKS):
        each(event)
    return event
