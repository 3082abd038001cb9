"""The RFC's lifecycle, declared in one place (DESIGN principle 3).

Each transition names its sources, its target and who may take it. `services.transition()`
is the only code that changes `Rfc.state`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from core.roles import Role


class RfcState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_APPROVAL = "in_approval", "In approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    DEPLOYING = "deploying", "Deploying"
    DEPLOYED = "deployed", "Deployed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


AUTHOR = "author"  # the RFC's author
SYSTEM = "system"  # the portal itself: the approval chain, the deployment worker


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str
    allowed: frozenset[str]  # roles at the RFC's sites, AUTHOR or SYSTEM
    label: str
    needs_reason: bool = False


S = RfcState
_OPEN = {S.DRAFT, S.SUBMITTED, S.IN_APPROVAL, S.APPROVED, S.SCHEDULED}

TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        Transition("submit", frozenset({S.DRAFT}), S.SUBMITTED, frozenset({AUTHOR}), "Submit for approval"),
        # Submission opens the approval chain; the first signature moves the RFC into approval and
        # the last one approves it (approvals.services.sign).
        Transition(
            "start_approval", frozenset({S.SUBMITTED}), S.IN_APPROVAL, frozenset({SYSTEM}), "Start approval"
        ),
        Transition("approve", frozenset({S.IN_APPROVAL}), S.APPROVED, frozenset({SYSTEM}), "Approve"),
        # A rejection returns the RFC to draft so the author can mend it (issue 3.4).
        Transition(
            "reject",
            frozenset({S.SUBMITTED, S.IN_APPROVAL}),
            S.DRAFT,
            frozenset({SYSTEM}),
            "Reject",
            needs_reason=True,
        ),
        # Final rejection: a change that passed DEV and failed UAT (E8).
        Transition(
            "reject_final",
            frozenset({S.DRAFT, S.SUBMITTED, S.IN_APPROVAL, S.APPROVED, S.SCHEDULED}),
            S.REJECTED,
            frozenset({SYSTEM}),
            "Reject for good",
            needs_reason=True,
        ),
        # Withdrawing an approved RFC lets its author edit it; the edit voids the signatures (A6).
        Transition(
            "withdraw",
            frozenset({S.SUBMITTED, S.IN_APPROVAL, S.APPROVED}),
            S.DRAFT,
            frozenset({AUTHOR}),
            "Withdraw to draft",
            needs_reason=True,
        ),
        Transition(
            "schedule",
            frozenset({S.APPROVED}),
            S.SCHEDULED,
            frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
            "Schedule",
        ),
        Transition(
            "unschedule",
            frozenset({S.SCHEDULED}),
            S.APPROVED,
            frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
            "Unschedule",
            needs_reason=True,
        ),
        Transition(
            "start_deployment", frozenset({S.SCHEDULED}), S.DEPLOYING, frozenset({SYSTEM}), "Start deployment"
        ),
        # Its window passed before a worker could start: back to approved, to be booked again (issue 6.3).
        Transition(
            "mark_missed",
            frozenset({S.SCHEDULED}),
            S.APPROVED,
            frozenset({SYSTEM}),
            "Window missed",
            needs_reason=True,
        ),
        Transition("mark_deployed", frozenset({S.DEPLOYING}), S.DEPLOYED, frozenset({SYSTEM}), "Deployed"),
        Transition(
            "mark_rolled_back", frozenset({S.DEPLOYING}), S.ROLLED_BACK, frozenset({SYSTEM}), "Rolled back"
        ),
        Transition("mark_failed", frozenset({S.DEPLOYING}), S.FAILED, frozenset({SYSTEM}), "Failed"),
        Transition(
            "close",
            frozenset({S.DEPLOYED, S.ROLLED_BACK, S.FAILED}),
            S.CLOSED,
            frozenset({AUTHOR, Role.RELEASE_MANAGER, Role.ADMIN}),
            "Close",
        ),
        Transition(
            "cancel",
            frozenset(_OPEN),
            S.CANCELLED,
            frozenset({AUTHOR, Role.RELEASE_MANAGER, Role.ADMIN}),
            "Cancel",
            needs_reason=True,
        ),
    ]
}

EDITABLE_STATES = frozenset({S.DRAFT})
# Not finished: what "open" means in the RFC list's filter and on the home page.
OPEN_STATES = frozenset({*_OPEN, S.DEPLOYING})
