"""Who is told of what: the one table of audiences per event kind, and the people it names.

Audiences:
- author: the RFC's author;
- approvers: everyone who signed the RFC (they vouched for it, they hear how it went);
- release managers: of the site of the deployment, or of every target site of the RFC;
- watchers: who chose to follow the RFC, were mentioned in a comment, or commented;
- mentioned: the people a comment names (the event carries them).

The person whose act an event reports is not told of it (they know). Inactive accounts are told
nothing. Approval requests, reminders and escalations are the approval chain's own mails
(approvals/mail.py), not part of this table.
"""

from __future__ import annotations

from approvals.models import Signature
from approvals.services import holders
from core.roles import Role
from notify import watchers
from releases.services import rfc_sites

AUTHOR, APPROVERS, RELEASE_MANAGERS, WATCHERS, MENTIONED = (
    "author",
    "approvers",
    "release managers",
    "watchers",
    "mentioned",
)
OUTCOME = frozenset({AUTHOR, APPROVERS, RELEASE_MANAGERS, WATCHERS})

TABLE: dict[str, frozenset[str]] = {
    "rfc.submitted": frozenset({AUTHOR, WATCHERS}),
    "rfc.approved": frozenset({AUTHOR, RELEASE_MANAGERS, WATCHERS}),
    "rfc.rejected": frozenset({AUTHOR, WATCHERS}),
    "rfc.changes_requested": frozenset({AUTHOR, WATCHERS}),
    "rfc.scheduled": frozenset({AUTHOR, APPROVERS, WATCHERS}),
    "rfc.window_reminder": frozenset({AUTHOR, RELEASE_MANAGERS}),
    "rfc.replanned": frozenset({AUTHOR, RELEASE_MANAGERS, WATCHERS}),
    "rfc.closed": frozenset({AUTHOR, WATCHERS}),
    "rfc.cancelled": frozenset({AUTHOR, APPROVERS, RELEASE_MANAGERS, WATCHERS}),
    "rollout.halted": frozenset({AUTHOR, RELEASE_MANAGERS, WATCHERS}),
    "deployment.started": OUTCOME,
    "deployment.succeeded": OUTCOME,
    "deployment.rolled_back": OUTCOME,
    "deployment.failed": OUTCOME,
    "deployment.rollback_failed": OUTCOME,
    "gate.failing": frozenset({AUTHOR, RELEASE_MANAGERS}),
    "review.due": frozenset({AUTHOR, RELEASE_MANAGERS}),
    "comment.added": frozenset({AUTHOR, WATCHERS}),
    "comment.mentioned": frozenset({MENTIONED}),
}


def _release_managers(event) -> list:
    sites = [event.deployment.environment.site] if event.deployment is not None else rfc_sites(event.rfc)
    people: dict[int, object] = {}
    for site in sites:
        for user in holders(Role.RELEASE_MANAGER, site):
            people.setdefault(user.pk, user)
    return list(people.values())


def _approvers(event) -> list:
    signatures = Signature.objects.filter(rfc=event.rfc).select_related("signer")
    return list({s.signer_id: s.signer for s in signatures}.values())


def people(event) -> dict[int, tuple[object, list[str]]]:
    """{user id: (user, [audiences])} for `event`, in the table's order, the actor left out."""
    wanted = TABLE.get(event.key, frozenset())
    found: dict[int, tuple[object, list[str]]] = {}

    def add(users, audience: str) -> None:
        for user in users:
            if user is None or not user.is_active:
                continue
            found.setdefault(user.pk, (user, []))[1].append(audience)

    if AUTHOR in wanted:
        add([event.rfc.author], AUTHOR)
    if APPROVERS in wanted:
        add(_approvers(event), APPROVERS)
    if RELEASE_MANAGERS in wanted:
        add(_release_managers(event), RELEASE_MANAGERS)
    if WATCHERS in wanted:
        add(watchers.watchers(event.rfc), WATCHERS)
    if MENTIONED in wanted:
        add(event.people.get(MENTIONED, []), MENTIONED)
    actor_id = getattr(event.actor, "pk", None)
    found.pop(actor_id, None)
    for user in event.people.get("except", []):  # told of the same act by another event
        found.pop(user.pk, None)
    return found
