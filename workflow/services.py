"""The RFC lifecycle: every transition and the effects declared beside it (workflow/transitions.py).

Pages, the API, the approval chain's outcomes and the engine's deployment moves all come here;
this is the only code that changes `Rfc.state`. The lock order is documented in transitions.py.
"""

from __future__ import annotations

import logging
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import translation
from django.utils.translation import gettext as _

from approvals import services as approvals
from approvals import standard
from approvals.models import Approval, Signature
from audit.services import record
from core import clock
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from deployments import checks, promotion, scheduling
from deployments.engine import describe_rpo
from deployments.models import Deployment
from deployments.states import TERMINAL, DeploymentState
from environments import access
from environments.models import Tier
from notify import events
from releases import gates
from releases import services as rfc_services
from releases.models import Evidence, Impact, Release, Rfc, UatSignoff
from releases.states import RfcState
from workflow import effects, reviews, rollout
from workflow.transitions import AUTHOR, EFFECTS, SYSTEM, TRANSITIONS

logger = logging.getLogger(__name__)


def may_transition(user, rfc: Rfc, name: str) -> bool:
    spec = TRANSITIONS[name]
    if rfc.state not in spec.sources:
        return False
    if user is None:
        return SYSTEM in spec.allowed
    if AUTHOR in spec.allowed and rfc.author_id == user.pk:
        return True
    roles = {r for r in spec.allowed if isinstance(r, Role)}
    return any(access.has_any_role(user, roles, site) for site in rfc_services.rfc_sites(rfc))


def available_transitions(user, rfc: Rfc) -> list:
    return [
        spec
        for name, spec in TRANSITIONS.items()
        if SYSTEM not in spec.allowed and may_transition(user, rfc, name)
    ]


def transition(user, rfc: Rfc, name: str, reason: str = "", data: dict | None = None) -> Rfc:
    """The only way an RFC changes state: check, change and audit in one transaction.

    `user=None` is the portal itself (approval chain, deployment worker).
    """
    spec = TRANSITIONS.get(name)
    if spec is None:
        raise ValidationError({"name": _("There is no transition %(name)s.") % {"name": repr(name)}})
    if spec.needs_reason and not reason.strip():
        raise ValidationError({"reason": _("%(action)s needs a reason.") % {"action": spec.label}})
    with gates.noting_refusals(rfc, name), transaction.atomic():
        locked = Rfc.objects.select_for_update().get(pk=rfc.pk)
        current = (
            Rfc.objects.select_related("release", "author")
            .prefetch_related(
                Prefetch("impacts", queryset=Impact.objects.select_related("site")),
                Prefetch("signoffs", queryset=UatSignoff.objects.select_related("site", "signed_by")),
            )
            .get(pk=locked.pk)
        )
        if current.state not in spec.sources:
            raise StateConflict(
                _("%(rfc)s is %(state)s; '%(action)s' is not possible from there.")
                % {"rfc": current.number, "state": current.get_state_display().lower(), "action": spec.label}
            )
        if user is not None and not may_transition(user, current, name):
            raise PermissionDenied(
                _("You may not %(action)s %(rfc)s.") % {"action": spec.label.lower(), "rfc": current.number}
            )
        if user is None and SYSTEM not in spec.allowed:
            raise PermissionDenied(
                _("'%(action)s' is taken by a person, not by the portal.") % {"action": spec.label}
            )
        extra: dict = {}
        if name == "schedule" and not scheduling.all_sites_booked(current):
            raise RuleViolation(
                _("Book a PROD slot for every target site first (the scheduling form)."),
                rule=scheduling.WINDOW_GATE,
            )
        if name == "close":
            reviews.require_done(current)
        if name in ("rework", "reschedule"):
            reviews.require_done(current, reviews.REPLANNING)
        fixed = None
        if name == "rework":
            data = dict(data or {})
            fixed = _fixed_release(current, data.pop("release", None))
            extra = {"release": str(fixed), "replaces": str(current.release)}
        template = None
        if name == "submit" and (data or {}).get("standard_change"):
            data = dict(data)
            template = standard.resolve(data["standard_change"])
            data["standard_change"] = str(template.uuid)
        if name == "submit":
            failed = gates.failing(current, "submit")
            if failed:
                raise RuleViolation(
                    _("Not ready to submit: %(gates)s")
                    % {"gates": "; ".join(f"{_(g.name)} — {g.reason}" for g in failed)},
                    rule=failed[0].name,
                    failed=[g.as_dict() for g in failed],
                )
            current.change_class = rfc_services.classify_rfc(current.release, rfc_services.rfc_sites(current))
            current.submitted_at = clock.now()
            extra = {"change_class": current.change_class}
            refused = template and standard.refusal(template, current)
            if refused:
                raise RuleViolation(refused, rule=standard.RULE)
        before_state = current.state
        current.state = spec.target
        current.save(update_fields=["state", "change_class", "submitted_at", "updated_at"])
        record(
            spec.event,
            current,
            actor=user,
            actor_name=None if user else "system",
            before={"state": before_state},
            after={"state": current.state, **extra, **(data or {})},
            reason=reason.strip(),
        )
        if fixed is not None:
            current = rfc_services.update_rfc(user, current, release=fixed)
            approvals.void_stale_signatures(current, user)
        context = effects.Context(user, current, name, reason.strip(), data or {})
        for effect in EFFECTS.get(name, ()):
            effect(context)
        if template is not None:  # approved by the template: no chain (the gates still apply)
            current = transition(None, current, "start_approval", data={"standard_change": template.name})
            current = transition(None, current, "approve", data={"standard_change": template.name})
    return current


def _fixed_release(rfc: Rfc, release):
    """The release that replaces the one that failed (a Release or its UUID, from a page or the API):
    another build (a new artifact) of the product."""
    if release is not None and not isinstance(release, Release):
        try:
            release = Release.objects.filter(uuid=release).first()
        except (ValidationError, ValueError):
            release = None
    if release is None:
        raise ValidationError({"release": _("Choose the fixed release to attach.")})
    if release.pk == rfc.release_id or (
        release.artifact_sha256 and release.artifact_sha256 == rfc.release.artifact_sha256
    ):
        raise ValidationError(
            {"release": _("%(release)s is the build that failed; attach a fixed one.") % {"release": release}}
        )
    if release.product != rfc.release.product:
        raise ValidationError(
            {"release": _("Choose a release of %(product)s.") % {"product": rfc.release.product}}
        )
    return release


def fixed_release_choices(rfc: Rfc):
    """Releases that may replace the RFC's failed one: other builds of the same product, newest first."""
    choices = Release.objects.filter(product=rfc.release.product).exclude(pk=rfc.release_id)
    if rfc.release.artifact_sha256:
        choices = choices.exclude(artifact_sha256=rfc.release.artifact_sha256)
    return choices.order_by("-created_at")


def submit(user, rfc: Rfc) -> Rfc:
    return transition(user, rfc, "submit")


def _lock(rfc_or_pk) -> Rfc:
    """Lock order step 1: the RFC row."""
    return Rfc.objects.select_for_update().get(pk=getattr(rfc_or_pk, "pk", rfc_or_pk))


# --- Content edits: a change after a signature voids it (A6, §11.70) -----------------------------
def update_rfc(user, rfc: Rfc, **fields) -> Rfc:
    with transaction.atomic():
        _lock(rfc)
        updated = rfc_services.update_rfc(user, rfc, **fields)
        approvals.void_stale_signatures(updated, user)
    return updated


def add_evidence(user, rfc: Rfc, upload, kind: str, description: str = "", supersedes=None) -> Evidence:
    with transaction.atomic():
        _lock(rfc)
        evidence = rfc_services.add_evidence(user, rfc, upload, kind, description, supersedes)
        approvals.void_stale_signatures(rfc, user)
    return evidence


def delete_evidence(user, evidence: Evidence) -> None:
    with transaction.atomic():
        _lock(evidence.rfc_id)
        rfc_services.delete_evidence(user, evidence)
        approvals.void_stale_signatures(evidence.rfc, user)


# --- UAT sign-off: only what succeeded in the site's UAT (X5) ---------------------------------------
def sign_off_uat(user, rfc: Rfc, site, comment: str, files, cite=()) -> UatSignoff:
    """A key user signs off UAT (R6) for a release that succeeded in the site's UAT, or in its DEV
    where the site has no UAT (X5, E1)."""

    def proven(locked: Rfc) -> None:
        refused = promotion.signoff_refusal(locked, site)
        if refused:
            raise RuleViolation(refused, rule=promotion.RULE)

    return rfc_services.sign_off_uat(user, rfc, site, comment, files, ready=proven, cite=cite)


# --- Signatures: the chain reports its outcome, the workflow moves the RFC ------------------------
def sign(
    user,
    approval: Approval,
    decision: str,
    password: str,
    reason: str = "",
    via: str = "portal",
    expected_hash: str | None = None,
    *,
    link=None,
    otp_code: str = "",
) -> Signature:
    """Approve or reject one approval as an electronic signature (§11.50, §11.70, §11.200), from a
    page, the API or an email link. A link is claimed in the signing transaction and binds the
    signature to the content it was sent with (A5)."""
    approvals.check_decision(decision, reason)
    approvals.verify_password(user, password, approval, decision, via, otp_code=otp_code)
    try:
        with transaction.atomic():
            _lock(approval.rfc_id)
            if link is not None:
                approvals.claim_link(link)
                expected_hash = link.content_hash
            return sign_verified(user, approval, decision, reason, via, expected_hash)
    except (StateConflict, PermissionDenied) as exc:
        # A refusal after the password is audited too, after its transaction rolled back: the losing
        # attempt of a race (FAULTS 8: both attempts are in the trail) and a signer who may not sign
        # this one, e.g. its author (FAULTS 7: separation of duties).
        record(
            "approvals.signature.conflict"
            if isinstance(exc, StateConflict)
            else "approvals.signature.refused",
            approval,
            actor=user,
            reason=" ".join(str(message) for message in getattr(exc, "messages", [exc])),
            after={"decision": decision, "via": via},
        )
        raise


def sign_verified(
    user,
    approval: Approval,
    decision: str,
    reason: str = "",
    via: str = "portal",
    expected_hash: str | None = None,
) -> Signature:
    with transaction.atomic():
        _lock(approval.rfc_id)
        signed = approvals.sign_verified(user, approval, decision, reason, via, expected_hash)
        for outcome in signed.outcomes:
            transition(
                None,
                Rfc.objects.get(pk=approval.rfc_id),
                outcome.transition,
                reason=outcome.reason,
                data=outcome.data,
            )
    return signed.signature


# --- Scheduling: booking every target site schedules the RFC ---------------------------------------
def schedule(
    user,
    rfc: Rfc,
    site,
    start,
    duration: int,
    *,
    handover_override: bool = False,
    acknowledge_conflicts: bool = False,
) -> Deployment:
    """Book the RFC's PROD deployment at `site`; when every target site is booked the RFC is
    scheduled (and an emergency change gets its review, W6)."""
    with transaction.atomic():
        _lock(rfc)
        deployment = scheduling.book(
            user,
            rfc,
            site,
            start,
            duration,
            handover_override=handover_override,
            acknowledge_conflicts=acknowledge_conflicts,
        )
        locked = Rfc.objects.get(pk=rfc.pk)
        if scheduling.all_sites_booked(locked):
            booked = len(scheduling.booked_sites(locked))
            transition(user, locked, "schedule", data={"deployments": booked})
    return deployment


# --- Deployments: the RFC follows its deployments' moves ------------------------------------------
# What people hear of a PROD deployment's moves (a DEV or UAT run is the author's own business: its page
# shows it, and a failure there is told through the RFC's rejection).
DEPLOYMENT_EVENTS = {
    DeploymentState.RUNNING: "deployment.started",
    DeploymentState.SUCCEEDED: "deployment.succeeded",
    DeploymentState.ROLLED_BACK: "deployment.rolled_back",
    DeploymentState.FAILED: "deployment.failed",
    DeploymentState.ROLLBACK_FAILED: "deployment.rollback_failed",
}


def tell_about_deployment(rfc: Rfc, deployment: Deployment, source: str, target: str, actor) -> None:
    kind = DEPLOYMENT_EVENTS.get(target)
    if kind is None:
        return
    data = {}
    if target != DeploymentState.RUNNING and deployment.outcome:
        data["reason"] = deployment.outcome
    if target == DeploymentState.ROLLED_BACK:
        data["rpo"] = describe_rpo(deployment.rpo or {})
    events.emit(kind, rfc, actor=actor, deployment=deployment, data=data)


def _halt_rollout(deployment_id: int) -> None:
    try:
        rollout.halt(deployment_id, lambda rfc, reason: transition(None, rfc, "hold", reason=reason))
    except Exception:  # the "Release rings" gate still refuses those sites; freeing them is a courtesy
        logger.exception("Halting the rollout after deployment %s failed", deployment_id)


def follow_deployment(deployment: Deployment, source: str, target: str, *, actor=None) -> None:
    """Called by `deployments.states.move` inside its transaction, with the RFC already locked."""
    rfc = Rfc.objects.get(pk=deployment.rfc_id)
    tier = deployment.environment.tier
    if tier != Tier.PROD:
        if target in TERMINAL:
            note = checks.tier_failure_note(deployment)  # E8: passed in DEV, failed in UAT
            if note and rfc.state in TRANSITIONS["reject_final"].sources:
                transition(None, rfc, "reject_final", reason=note[:1000])
        return
    tell_about_deployment(rfc, deployment, source, target, actor)
    if target == DeploymentState.CANCELLED:
        if actor is not None and rfc.state == RfcState.SCHEDULED:
            transition(actor, rfc, "unschedule", reason=deployment.cancel_reason or "Deployment cancelled")
        return
    started = source == DeploymentState.SCHEDULED and target in (
        DeploymentState.RUNNING,
        DeploymentState.FAILED,
    )
    if started and rfc.state == RfcState.SCHEDULED:
        rfc = transition(None, rfc, "start_deployment", data={"deployment": str(deployment.uuid)})
    if target == DeploymentState.MISSED:
        if rfc.state == RfcState.SCHEDULED:
            transition(None, rfc, "mark_missed", reason=deployment.outcome)
        return
    if target in rollout.FAILED_ENDS:
        # The rollout halts once this move has committed (E10): the other sites' bookings are freed.
        transaction.on_commit(partial(_halt_rollout, deployment.pk))
        # A standard change that led to a rollback or failure is suspended at once.
        with translation.override(None):  # the suspension's reason is a record: in English
            ended = deployment.get_state_display().lower()
        standard.after_failure(rfc, ended)
    attempt = Deployment.objects.filter(rfc=rfc, environment__tier=Tier.PROD)
    # A re-planned RFC's earlier attempt ended (and its review opened) before anything of this
    # attempt started: only this attempt's deployments decide how it ends.
    attempt = attempt.filter(pk__gt=reviews.attempt_boundary(rfc))
    prod = list(
        attempt.exclude(state__in=[DeploymentState.CANCELLED, DeploymentState.MISSED]).values_list(
            "state", flat=True
        )
    )
    if rfc.state != RfcState.DEPLOYING or not prod or any(state not in TERMINAL for state in prod):
        return
    if any(state in (DeploymentState.FAILED, DeploymentState.ROLLBACK_FAILED) for state in prod):
        transition(None, rfc, "mark_failed", reason=deployment.outcome)
    elif any(state == DeploymentState.ROLLED_BACK for state in prod):
        transition(None, rfc, "mark_rolled_back", reason=deployment.outcome)
    else:
        transition(None, rfc, "mark_deployed")
