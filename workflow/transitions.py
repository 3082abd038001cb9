"""The RFC's lifecycle, declared in one place (DESIGN principle 3): each transition's sources, target,
who may take it, and its EFFECTS on the other lifecycles (approval rounds, bookings, reviews).

`workflow.services.transition()` checks, changes, audits and runs the declared effects in one
transaction. Approvals and the engine never move an RFC: they report an outcome (a finished round,
a deployment's move) and the workflow applies the transition.

Lock order (the same in every transition, signature and deployment move, so two of them can never
wait on each other): 1. the RFC row; 2. its approval rows (round, step, approval); 3. its
deployments (and the environment when booking). A function that needs a later lock first takes
the RFC's. The concurrency test in tests/workflow/ runs signing against withdrawing on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy

from audit.actions import canonical
from core.roles import Role
from releases.states import BEFORE_DEPLOYMENT, RfcState
from workflow import effects, reviews

S = RfcState

AUTHOR = "author"  # the RFC's author
SYSTEM = "system"  # the portal itself: the approval chain, the deployment worker


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str
    allowed: frozenset[str]  # roles at the RFC's sites, AUTHOR or SYSTEM
    label: str  # lazy: read in the reader's language
    needs_reason: bool = False
    past: str = ""  # the audit action's last word, where the name alone does not give it

    @property
    def event(self) -> str:
        """The audit action it writes, in the past tense (audit/actions.py)."""
        return f"releases.rfc.{self.past}" if self.past else canonical(f"releases.rfc.{self.name}")


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        Transition(
            "submit",
            frozenset({S.DRAFT}),
            S.SUBMITTED,
            frozenset({AUTHOR}),
            gettext_lazy("Submit for approval"),
        ),
        # Submission opens the approval chain; the first signature moves the RFC into approval and
        # the last one approves it (approvals.services.sign).
        Transition(
            "start_approval",
            frozenset({S.SUBMITTED}),
            S.IN_APPROVAL,
            frozenset({SYSTEM}),
            gettext_lazy("Start approval"),
        ),
        Transition(
            "approve", frozenset({S.IN_APPROVAL}), S.APPROVED, frozenset({SYSTEM}), gettext_lazy("Approve")
        ),
        # A rejection returns the RFC to draft so the author can mend it.
        Transition(
            "reject",
            frozenset({S.SUBMITTED, S.IN_APPROVAL}),
            S.DRAFT,
            frozenset({SYSTEM}),
            gettext_lazy("Reject"),
            needs_reason=True,
        ),
        # An approver asks the author a question: back to draft, the round closed without approval.
        Transition(
            "request_changes",
            frozenset({S.SUBMITTED, S.IN_APPROVAL}),
            S.DRAFT,
            frozenset({SYSTEM}),
            gettext_lazy("Request changes"),
            needs_reason=True,
            past="changes_requested",
        ),
        # Final rejection: a change that passed DEV and failed UAT (E8).
        Transition(
            "reject_final",
            frozenset({S.DRAFT, S.SUBMITTED, S.IN_APPROVAL, S.APPROVED, S.SCHEDULED}),
            S.REJECTED,
            frozenset({SYSTEM}),
            gettext_lazy("Reject for good"),
            needs_reason=True,
        ),
        # Withdrawing an approved RFC lets its author edit it; the edit voids the signatures (A6).
        Transition(
            "withdraw",
            frozenset({S.SUBMITTED, S.IN_APPROVAL, S.APPROVED}),
            S.DRAFT,
            frozenset({AUTHOR}),
            gettext_lazy("Withdraw to draft"),
            needs_reason=True,
        ),
        Transition(
            "schedule",
            frozenset({S.APPROVED}),
            S.SCHEDULED,
            frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
            gettext_lazy("Schedule"),
        ),
        Transition(
            "unschedule",
            frozenset({S.SCHEDULED}),
            S.APPROVED,
            frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
            gettext_lazy("Unschedule"),
            needs_reason=True,
        ),
        # A rollback or failure elsewhere halted the release's rollout (E10, workflow/rollout.py):
        # the portal frees the bookings; the signatures stay, the RFC is booked again later.
        Transition(
            "hold",
            frozenset({S.SCHEDULED}),
            S.APPROVED,
            frozenset({SYSTEM}),
            gettext_lazy("Hold (rollout halted)"),
            needs_reason=True,
            past="halted",
        ),
        Transition(
            "start_deployment",
            frozenset({S.SCHEDULED}),
            S.DEPLOYING,
            frozenset({SYSTEM}),
            gettext_lazy("Start deployment"),
        ),
        # Its window passed before a worker could start: back to approved, to be booked again.
        Transition(
            "mark_missed",
            frozenset({S.SCHEDULED}),
            S.APPROVED,
            frozenset({SYSTEM}),
            gettext_lazy("Window missed"),
            needs_reason=True,
        ),
        Transition(
            "mark_deployed",
            frozenset({S.DEPLOYING}),
            S.DEPLOYED,
            frozenset({SYSTEM}),
            gettext_lazy("Deployed"),
        ),
        Transition(
            "mark_rolled_back",
            frozenset({S.DEPLOYING}),
            S.ROLLED_BACK,
            frozenset({SYSTEM}),
            gettext_lazy("Rolled back"),
        ),
        Transition(
            "mark_failed", frozenset({S.DEPLOYING}), S.FAILED, frozenset({SYSTEM}), gettext_lazy("Failed")
        ),
        Transition(
            "close",
            frozenset({S.DEPLOYED, S.ROLLED_BACK, S.FAILED}),
            S.CLOSED,
            frozenset({AUTHOR, Role.RELEASE_MANAGER, Role.ADMIN}),
            gettext_lazy("Close"),
        ),
        # Re-planning after a rollback or a failure, once the attempt's review is done: a fixed release
        # takes the RFC back to draft (its history kept, the signatures voided by the content change,
        # a new round at the next submission); a cause outside the change (the window, the plant)
        # takes it back to approved, to be booked again with the same signatures.
        Transition(
            "rework",
            frozenset({S.ROLLED_BACK, S.FAILED}),
            S.DRAFT,
            frozenset({AUTHOR}),
            gettext_lazy("Attach a fixed release"),
            needs_reason=True,
            past="reworked",
        ),
        Transition(
            "reschedule",
            frozenset({S.ROLLED_BACK, S.FAILED}),
            S.APPROVED,
            frozenset({AUTHOR, Role.RELEASE_MANAGER, Role.ADMIN}),
            gettext_lazy("Reschedule"),
            needs_reason=True,
            past="rescheduled",
        ),
        Transition(
            "cancel",
            BEFORE_DEPLOYMENT,
            S.CANCELLED,
            frozenset({AUTHOR, Role.RELEASE_MANAGER, Role.ADMIN}),
            gettext_lazy("Cancel"),
            needs_reason=True,
        ),
    ]
}


# What each transition sets going on the other lifecycles, inside its transaction, in this order.
# Later capabilities (notifications, rings, webhooks, reviews) add their effects here.
Effect = Callable[["effects.Context"], None]
EFFECTS: dict[str, tuple[Effect, ...]] = {
    "submit": (effects.open_approval_round, effects.author_watches, effects.tell("rfc.submitted")),
    "approve": (effects.tell("rfc.approved"),),
    "reject": (effects.close_round_rejected, effects.tell("rfc.rejected")),
    "request_changes": (effects.close_round_rejected, effects.tell("rfc.changes_requested", key="question")),
    "reject_final": (effects.close_round_rejected, effects.free_bookings, effects.tell("rfc.rejected")),
    "withdraw": (effects.close_round_withdrawn, effects.free_bookings),
    "cancel": (effects.close_round_withdrawn, effects.free_bookings, effects.tell("rfc.cancelled")),
    "schedule": (effects.open_emergency_review, effects.tell("rfc.scheduled")),
    "unschedule": (effects.free_bookings,),
    "hold": (effects.free_bookings, effects.tell("rollout.halted")),
    "mark_deployed": (reviews.open_review,),
    "mark_rolled_back": (reviews.open_review,),
    "mark_failed": (reviews.open_review,),
    "rework": (effects.tell("rfc.replanned"),),
    "reschedule": (effects.tell("rfc.replanned"),),
    "close": (effects.tell("rfc.closed"),),
}
