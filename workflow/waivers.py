"""Gate waivers (C5): a release manager lets one RFC past one failing gate, as a signed act.

Which gates: those registered `waivable=True` (`releases.gates`): the computed evidence about the
pipeline — "UAT data fresh", "SQL idempotent", "Rollback rehearsed". A decision or a hard rule is never
waived: "Approvals complete", "Deployment window", "Promotion order", "Artifact checksum", "UAT sign-off",
"Impact analysis", "Rollback plan", "Downtime matches class" (a 422 names the gate).

Who: a release manager or an admin of every target site of the RFC (a waiver lets the gate pass for
all of them). How: with a reason and the waiver's password re-entered (a wrong password is a 400, is
audited as a refused attempt and records no waiver), in one transaction that locks the RFC first (the
lock order in docs/architecture.md), with the audit event `releases.gate.waived` naming the gate, the
reason, what the gate said at that moment and the artifact's SHA-256.

A waiver counts only for the artifact it was given for (a new artifact needs a new waiver); it is given
before the RFC starts deploying (the worker then still honours it), and it may be revoked
(`releases.gate.waiver_revoked`).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from approvals import services as approvals
from audit.services import record
from core import clock
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from environments import access
from releases import gates
from releases import services as rfc_services
from releases.models import GateWaiver, Rfc
from releases.states import BEFORE_DEPLOYMENT

WAIVERS = frozenset({Role.RELEASE_MANAGER, Role.ADMIN})


class WrongPassword(ValidationError):
    """The password re-entered for a waiver did not match: a 400 on the password field."""


def _holds_every_site(user, rfc: Rfc) -> bool:
    sites = rfc_services.rfc_sites(rfc)
    return bool(sites) and all(access.has_any_role(user, WAIVERS, site) for site in sites)


def may_waive(user, rfc: Rfc) -> bool:
    """A release manager or admin of every target site, while the RFC has not started deploying."""
    return rfc.state in BEFORE_DEPLOYMENT and _holds_every_site(user, rfc)


def waive(user, rfc: Rfc, gate: str, reason: str, password: str, otp_code: str = "") -> GateWaiver:
    """Waive the failing gate `gate` for `rfc`'s current artifact."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("A waiver needs a reason.")})
    if not gates.registered(gate):
        raise ValidationError({"gate": _("There is no gate %(gate)s.") % {"gate": repr(gate)}})
    if not may_waive(user, rfc):
        raise PermissionDenied(
            _(
                "Only a release manager or an admin of every target site waives a gate of %(rfc)s, "
                "before it deploys."
            )
            % {"rfc": rfc.number}
        )
    if not gates.waivable(gate):
        raise RuleViolation(
            _("%(gate)s may not be waived: only the computed evidence about the pipeline is waivable.")
            % {"gate": _(gate)},
            rule=gate,
        )
    approvals.require_password(
        user,
        password,
        rfc,
        "releases.gate.waiver_refused",
        {"gate": gate},
        lambda why: WrongPassword({"password": _("%(why)s: the waiver was not recorded.") % {"why": why}}),
        otp_code=otp_code,
        code_error=lambda message: WrongPassword(
            {"otp_code": _("%(message)s The waiver was not recorded.") % {"message": message}}
        ),
    )
    with transaction.atomic():
        locked = Rfc.objects.select_for_update().get(pk=rfc.pk)
        current = Rfc.objects.select_related("release").get(pk=locked.pk)
        if current.state not in BEFORE_DEPLOYMENT:
            raise StateConflict(
                _("%(rfc)s is %(state)s: too late to waive.")
                % {"rfc": current.number, "state": current.get_state_display().lower()}
            )
        sha256 = current.release.artifact_sha256
        if len(sha256) != 64:
            raise RuleViolation(
                _("A waiver is bound to the artifact's SHA-256, and none is recorded."), rule=gate
            )
        # What the gate said is kept with the waiver and in the audit trail: in English.
        with translation.override(None):
            said = gates.unwaived(current, gate)
        if said.passed:
            raise StateConflict(_("%(gate)s passes: there is nothing to waive.") % {"gate": _(gate)})
        if gates.live_waivers(current, [gate]).exists():
            raise StateConflict(_("%(gate)s is already waived for this artifact.") % {"gate": _(gate)})
        waiver = GateWaiver.objects.create(
            rfc=current,
            gate=gate,
            artifact_sha256=sha256,
            reason=reason,
            failing_reason=said.reason,
            waived_by=user,
            waived_at=clock.now(),
        )
        record(
            "releases.gate.waived",
            current,
            actor=user,
            reason=reason,
            after={
                "waiver": waiver.pk,
                "gate": gate,
                "reason": reason,
                "failing_reason": said.reason,
                "artifact_sha256": sha256,
            },
        )
    return waiver


def revoke(user, waiver: GateWaiver, reason: str) -> GateWaiver:
    """Withdraw a waiver: the gate fails again until its check passes."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Revoking a waiver needs a reason.")})
    with transaction.atomic():
        rfc = Rfc.objects.select_for_update().get(pk=waiver.rfc_id)
        if not _holds_every_site(user, rfc):
            raise PermissionDenied(
                _("Only a release manager or an admin of every target site revokes a waiver.")
            )
        current = GateWaiver.objects.select_for_update().get(pk=waiver.pk)
        if current.revoked_at is not None:
            raise StateConflict(_("This waiver is already revoked."))
        current.revoked_by, current.revoked_at, current.revoke_reason = user, clock.now(), reason
        current.save(update_fields=["revoked_by", "revoked_at", "revoke_reason"])
        record(
            "releases.gate.waiver_revoked",
            rfc,
            actor=user,
            reason=reason,
            after={"waiver": current.pk, "gate": current.gate, "artifact_sha256": current.artifact_sha256},
        )
    return current


def waivers_of(rfc: Rfc):
    """Every waiver of the RFC, live, revoked or for an earlier artifact, oldest first."""
    return (
        GateWaiver.objects.filter(rfc=rfc)
        .select_related("waived_by", "revoked_by")
        .order_by("waived_at", "id")
    )
