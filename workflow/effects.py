"""The effects an RFC transition has on the other lifecycles (declared in workflow/transitions.py).

Each runs inside the transition's transaction, after the RFC row is locked and its new state saved;
each is idempotent for the state it finds (a round already closed, no booking left).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from approvals import services as approvals
from approvals import standard
from approvals.models import RoundState
from deployments import scheduling
from deployments.models import Deployment
from deployments.states import ACTIVE as ACTIVE_DEPLOYMENT_STATES
from notify import events, watchers
from notify.models import WatchReason


@dataclass
class Context:
    user: object | None
    rfc: object
    name: str
    reason: str = ""
    data: dict = field(default_factory=dict)


def open_approval_round(ctx: Context) -> None:
    """The chain of the RFC's class, or — submitted as a standard change — the template's approval."""
    if ctx.data.get("standard_change"):
        standard.use(ctx.user, ctx.rfc, standard.resolve(ctx.data["standard_change"]))
        return
    approvals.open_round(ctx.rfc, ctx.user)


def close_round_rejected(ctx: Context) -> None:
    approvals.close_round(ctx.rfc, RoundState.REJECTED)


def close_round_withdrawn(ctx: Context) -> None:
    approvals.close_round(ctx.rfc, RoundState.WITHDRAWN)


def free_bookings(ctx: Context) -> None:
    reason = {"unschedule": "RFC unscheduled", "hold": ctx.reason or "Rollout halted"}.get(
        ctx.name, f"RFC {ctx.name}"
    )
    scheduling.cancel_deployments(ctx.rfc, ctx.user, reason)


def open_emergency_review(ctx: Context) -> None:
    """An emergency change gets its post-implementation review by the normal chain (W6)."""
    if not ctx.rfc.emergency:
        return
    first = (
        Deployment.objects.filter(rfc=ctx.rfc, state__in=ACTIVE_DEPLOYMENT_STATES)
        .order_by("scheduled_start")
        .first()
    )
    if first is not None:
        approvals.open_review(ctx.rfc, ctx.user, first.scheduled_start)


Effect = Callable[["Context"], None]


# --- Telling people (notify/recipients.py says who) ------------------------------------------------
def tell(kind: str, key: str = "reason") -> Effect:
    """The effect that tells everyone concerned that the transition happened, in its transaction
    (the transition's reason goes with it under `key`)."""

    def effect(ctx: Context) -> None:
        data = {key: ctx.reason} if ctx.reason else {}
        events.emit(kind, ctx.rfc, actor=ctx.user, data=data)

    effect.__name__ = f"tell_{kind.replace('.', '_')}"
    return effect


def author_watches(ctx: Context) -> None:
    """The author follows their RFC from its submission (and may stop)."""
    watchers.watch(ctx.rfc.author, ctx.rfc, WatchReason.AUTHOR)
