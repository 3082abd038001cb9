"""Action names that changed over time. Events are never rewritten (the chain hashes the name they
were written with), so the old spelling stays in the row and reads as the current one (C1).

Action names are past tense: `releases.rfc.submitted`, `accounts.logged_out`.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# Written by v0.6.0 and earlier → the name written since.
RENAMED: dict[str, str] = {
    "releases.rfc.submit": "releases.rfc.submitted",
    "releases.rfc.start_approval": "releases.rfc.approval_started",
    "releases.rfc.approve": "releases.rfc.approved",
    "releases.rfc.reject": "releases.rfc.rejected",
    "releases.rfc.reject_final": "releases.rfc.finally_rejected",
    "releases.rfc.withdraw": "releases.rfc.withdrawn",
    "releases.rfc.schedule": "releases.rfc.scheduled",
    "releases.rfc.unschedule": "releases.rfc.unscheduled",
    "releases.rfc.start_deployment": "releases.rfc.deployment_started",
    "releases.rfc.mark_missed": "releases.rfc.window_missed",
    "releases.rfc.mark_deployed": "releases.rfc.deployed",
    "releases.rfc.mark_rolled_back": "releases.rfc.rolled_back",
    "releases.rfc.mark_failed": "releases.rfc.failed",
    "releases.rfc.close": "releases.rfc.closed",
    "releases.rfc.cancel": "releases.rfc.cancelled",
    "accounts.logout": "accounts.logged_out",
    # A deployment's move into a state that lasts (the others are past participles already).
    "releases.deployment.running": "releases.deployment.started",
    "releases.deployment.verifying": "releases.deployment.verification_started",
    "releases.deployment.rolling_back": "releases.deployment.rollback_started",
}


def canonical(action: str) -> str:
    """The name an event reads under today."""
    return RENAMED.get(action, action)


def starting_with(prefix: str) -> Q:
    """Events whose (current) action name starts with `prefix`, whichever spelling they were written with."""
    old = [before for before, after in RENAMED.items() if after.startswith(prefix)]
    query = Q(action__startswith=prefix)
    return query | Q(action__in=old) if old else query


# --- Human labels of action names (a concern adds its own section) --------------------------------
# Translated where shown (label() gives them in the reader's language); the codes stay in the trail.
LABELS: dict[str, Promise] = {}

# Two-step sign-in (accounts/mfa.py)
LABELS.update(
    {
        "accounts.mfa.enrolled": _("Two-step sign-in set up"),
        "accounts.mfa.verified": _("Sign-in code accepted"),
        "accounts.mfa.failed": _("Sign-in code refused"),
        "accounts.mfa.recovery_used": _("Signed in with a recovery code"),
        "accounts.mfa.reset": _("Two-step sign-in reset by an administrator"),
        "accounts.mfa.recovery_regenerated": _("New recovery codes made"),
    }
)


_WORDS = {"rfc": "RFC", "uat": "UAT", "mfa": "two-step sign-in", "sql": "SQL", "prod": "PROD", "api": "API"}


def label(action: str) -> str:
    """A human label for an action name: its own (LABELS), else its last two parts in words
    ("releases.rfc.uat_signed_off" → "RFC UAT signed off"). Exports keep the code itself."""
    name = canonical(action)
    if name in LABELS:
        return str(LABELS[name])
    parts = [p for p in name.split(".") if p][-2:]
    words = " ".join(_WORDS.get(w, w) for part in parts for w in part.split("_"))
    return (words[:1].upper() + words[1:]) if words else name


# Notifications (notify/)
LABELS.update(
    {
        "notify.preferences.changed": _("Notification settings changed"),
        "notify.rfc.watched": _("Started following the RFC"),
        "notify.rfc.unwatched": _("Stopped following the RFC"),
        "notify.rfc.muted": _("Muted the RFC"),
        "notify.rfc.unmuted": _("Unmuted the RFC"),
    }
)

# Requests for changes (approvals, workflow)
LABELS.update(
    {
        "approvals.signature.changes_requested": _("Signed: changes requested"),
        "approvals.signature.conflict": _("Signature not recorded: decided or changed a moment before"),
        "releases.rfc.changes_requested": _("Sent back to the author with a question"),
    }
)

# Comments (discussion/)
LABELS.update(
    {"discussion.comment.added": _("Commented"), "discussion.comment.edited": _("Edited a comment")}
)

# Post-implementation reviews (workflow/reviews.py)
LABELS.update(
    {
        "releases.review.opened": _("Post-implementation review opened"),
        "releases.review.completed": _("Post-implementation review completed"),
        "releases.rfc.reworked": _("Back to draft with a fixed release"),
        "releases.rfc.rescheduled": _("Back to approved, to be booked again"),
    }
)

# Release rings (workflow/rollout.py)
LABELS.update(
    {
        "releases.rollout.planned": _("Rollout rings planned"),
        "releases.rollout.halted": _("Rollout halted by a failure in an earlier ring"),
        "releases.rfc.halted": _("Held: the release's rollout halted, its bookings freed"),
    }
)

# Standard changes (approvals/standard.py)
LABELS.update(
    {
        "approvals.standard_change.proposed": _("Standard change proposed"),
        "approvals.standard_change.signed": _("Standard change signed"),
        "approvals.standard_change.signature_refused": _("Standard change signature refused"),
        "approvals.standard_change.approved": _("Standard change approved: in force"),
        "approvals.standard_change.used": _("RFC approved by a standard change"),
        "approvals.standard_change.suspended": _("Standard change suspended"),
    }
)

# Configuration items and conflicting changes (environments/items.py, deployments/conflicts.py)
LABELS.update(
    {
        "environments.items.imported": _("Configuration items imported from CSV"),
        "environments.item.created": _("Configuration item added"),
        "environments.terminal_token.issued": _("Terminal token issued"),
        "releases.deployment.conflict_acknowledged": _("Booked beside a conflicting change (acknowledged)"),
    }
)

# Feature flags switched per site as standard changes (deployments/flags.py)
LABELS.update(
    {
        "deployments.flag.requested": _("Feature flag switch requested"),
        "deployments.flag.switched_on": _("Feature flag turned on and verified"),
        "deployments.flag.switched_off": _("Feature flag turned off"),
        "deployments.flag.rolled_back": _("Feature flag turned off again after a failed check"),
        "deployments.flag.failed": _("Feature flag switch failed"),
    }
)

# The fidelity register and staging risks accepted (environments/fidelity.py, workflow/fidelity.py)
LABELS.update(
    {
        "environments.dependency.added": _("Dependency added to the register"),
        "environments.dependency.changed": _("Dependency in the register changed"),
        "environments.dependency.removed": _("Dependency removed from the register"),
        "releases.staging_gaps.accepted": _("Staging risk accepted by the business"),
        "releases.staging_gaps.acceptance_refused": _("Staging risk acceptance refused"),
    }
)

# Validation evidence the portal prints about itself (reports/traceability.py, reports/review.py)
LABELS.update(
    {
        "reports.traceability.imported": _("Test results imported for the traceability matrix"),
    }
)

# The periodic review (reports/periodic.py)
LABELS.update(
    {
        "reports.periodic_review.created": _("Periodic review drawn up"),
        "reports.periodic_review.signed": _("Periodic review signed"),
        "reports.periodic_review.signature_refused": _("Periodic review signature refused"),
    }
)

# The signatures' integrity check (approvals/integrity.py)
LABELS.update(
    {
        "approvals.signature.tampered": _("Signed RFC changed outside the portal: incident raised"),
        "approvals.signatures.verified": _("Signatures checked against their RFCs"),
    }
)
