"""Approval chains and electronic signatures: every rule in one place (PRODUCT.md A1–A6).

Pages, the email-link page, the API and the beat tasks all call these functions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy, gettext_noop, ngettext

from accounts import mfa, signing
from approvals.models import (
    Absence,
    Approval,
    ApprovalPolicy,
    ApprovalRound,
    ApprovalState,
    ApprovalStep,
    Decision,
    EmailLink,
    PolicyStep,
    RoundPurpose,
    RoundState,
    Signature,
    StandardChangeState,
    StandardChangeUse,
    StepRule,
    StepState,
)
from audit.services import record
from core import clock, jobs
from core.errors import StateConflict
from core.roles import Role
from environments import access
from releases.models import Evidence, Rfc, UatSignoff
from releases.states import RfcState
from releases.versioning import ChangeClass

logger = logging.getLogger(__name__)

BUSINESS_ROLE = Role.OPERATIONS_MANAGER  # A4: the business side of a high-risk change

DEFAULT_POLICIES: dict[str, list[tuple[list[str], str]]] = {
    ChangeClass.PATCH: [([Role.IT_MANAGER], StepRule.ALL)],
    ChangeClass.MINOR: [([Role.IT_MANAGER], StepRule.ALL), ([Role.OPERATIONS_MANAGER], StepRule.ALL)],
    ChangeClass.MAJOR: [
        ([Role.IT_MANAGER], StepRule.ALL),
        ([Role.OPERATIONS_MANAGER], StepRule.ALL),
        ([Role.CIO, Role.PLANT_DIRECTOR], StepRule.ALL),
    ],
}


def ensure_default_policies(**kwargs) -> None:
    """Create the default policy of each class that has none (an admin's edits are kept)."""
    for change_class, steps in DEFAULT_POLICIES.items():
        policy, created = ApprovalPolicy.objects.get_or_create(
            change_class=change_class, defaults={"description": "Default (PRODUCT.md A1–A3)"}
        )
        if created:
            PolicyStep.objects.bulk_create(
                [
                    PolicyStep(policy=policy, order=i, roles=[str(r) for r in roles], rule=rule)
                    for i, (roles, rule) in enumerate(steps, 1)
                ]
            )


# --- Content binding (§11.70) -----------------------------------------------------------------
def content_hash(rfc: Rfc) -> str:
    """SHA-256 over what an approver approves: the fields, the evidence hashes, the release checksum."""
    return hash_content(signed_content(rfc))


def hash_content(content: dict) -> str:
    canonical = json.dumps(content, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def signed_content(rfc: Rfc) -> dict:
    """What an approver approves, as read now from the database."""
    fresh = Rfc.objects.select_related("release").get(pk=rfc.pk)
    evidence = sorted(
        Evidence.objects.filter(rfc=fresh, superseded_by__isnull=True).values_list("sha256", flat=True)
    )
    content = {
        "number": fresh.number,
        "fields": fresh.snapshot(),
        "evidence": evidence,
        "release": {
            "product": fresh.release.product,
            "version": fresh.release.version,
            "sha256": fresh.release.artifact_sha256,
            "migration_sql": fresh.release.migration_sql,
            "undo_sql": fresh.release.undo_sql,
        },
    }
    return json.loads(json.dumps(content, cls=DjangoJSONEncoder))


# --- Who holds a role at a site ---------------------------------------------------------------
def holders(role: Role, site) -> QuerySet:
    """Active users holding `role` at `site`: through the role's group, or a per-site permission."""
    from guardian.models import GroupObjectPermission, UserObjectPermission

    from environments.models import Site

    perm = Permission.objects.get(content_type__app_label="environments", codename=Role(role).codename)
    site_pk = str(getattr(site, "pk", site))
    per_site_users = UserObjectPermission.objects.filter(
        permission=perm, object_pk=site_pk, content_type__model=Site._meta.model_name
    ).values("user_id")
    per_site_groups = GroupObjectPermission.objects.filter(
        permission=perm, object_pk=site_pk, content_type__model=Site._meta.model_name
    ).values("group_id")
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(groups__permissions=perm)
            | Q(user_permissions=perm)
            | Q(pk__in=per_site_users)
            | Q(groups__in=per_site_groups)
        )
        .distinct()
        .order_by("username")
    )


# --- Policies → a round ---------------------------------------------------------------------------
EMERGENCY_STEP = (
    [str(Role.CIO), str(Role.PLANT_DIRECTOR)],
    StepRule.ANY,
    # The step's note is stored with the round (English): marked here, translated where it is shown.
    gettext_noop("Emergency change: the CIO or the Plant Director"),
)
REVIEW_DAYS = 5


def chain_for(rfc: Rfc, *, purpose: str = RoundPurpose.APPROVAL) -> list[tuple[list[str], str, str]]:
    """(roles, rule, note) per step: the class's policy, plus the business step when high risk (A4).

    An emergency change is approved by the CIO or the Plant Director alone; the normal chain
    reviews it after the fact (W6, `open_review`).
    """
    if rfc.emergency and purpose == RoundPurpose.APPROVAL:
        return [EMERGENCY_STEP]
    policy = ApprovalPolicy.objects.prefetch_related("steps").filter(change_class=rfc.change_class).first()
    if policy is None or not policy.steps.all():
        ensure_default_policies()
        policy = ApprovalPolicy.objects.prefetch_related("steps").get(change_class=rfc.change_class)
    steps = [(list(step.roles), step.rule, "") for step in policy.steps.all()]
    if rfc.is_high_risk and not any(BUSINESS_ROLE in roles for roles, _, _ in steps):
        steps.insert(
            1, ([str(BUSINESS_ROLE)], StepRule.ALL, gettext_noop("High-risk change: business sign-off"))
        )
    return steps


def open_round(rfc: Rfc, actor, *, purpose: str = RoundPurpose.APPROVAL, due_at=None) -> ApprovalRound:
    """Create the RFC's chain and notify its first step. Runs inside the submission transaction."""
    now = clock.now()
    number = (
        ApprovalRound.objects.filter(rfc=rfc).order_by("-number").values_list("number", flat=True).first()
        or 0
    ) + 1
    chain = chain_for(rfc, purpose=purpose)
    rnd = ApprovalRound.objects.create(
        rfc=rfc,
        number=number,
        change_class=rfc.change_class,
        high_risk=rfc.is_high_risk,
        content_hash=content_hash(rfc),
        created_at=now,
        purpose=purpose,
        due_at=due_at,
    )
    sites = [impact.site for impact in rfc.impacts.select_related("site")]
    for order, (roles, rule, note) in enumerate(chain, 1):
        step = ApprovalStep.objects.create(round=rnd, order=order, roles=roles, rule=rule, note=note)
        Approval.objects.bulk_create(
            [Approval(step=step, rfc=rfc, role=role, site=site) for site in sites for role in roles]
        )
    first = rnd.steps.order_by("order").first()
    _activate(first, now)
    with translation.override(None):  # the audit trail keeps the role names in English
        steps = [
            " and ".join(str(Role(r).label) for r in roles) + (f" ({note})" if note else "")
            for roles, _, note in chain
        ]
    record(
        "approvals.review.opened" if rnd.is_review else "approvals.round.opened",
        rnd,
        actor=actor,
        after={
            "round": number,
            "content_hash": rnd.content_hash,
            "purpose": purpose,
            "due_at": due_at.isoformat() if due_at else None,
            "steps": steps,
        },
    )
    return rnd


def open_review(rfc: Rfc, actor, starts_at) -> ApprovalRound | None:
    """An emergency change gets a post-implementation review by the normal chain, due 5 days after
    its start (W6). Opened once, when the change is scheduled."""
    if ApprovalRound.objects.filter(rfc=rfc, purpose=RoundPurpose.REVIEW).exists():
        return None
    return open_round(rfc, actor, purpose=RoundPurpose.REVIEW, due_at=starts_at + timedelta(days=REVIEW_DAYS))


def _activate(step: ApprovalStep, now) -> None:
    step.state, step.activated_at = StepState.PENDING, now
    step.save(update_fields=["state", "activated_at"])
    step.approvals.update(state=ApprovalState.PENDING, notify_due=True)
    jobs.nudge("approvals.tasks.send_notifications")  # the outbox row is the truth; beat sweeps it anyway


def close_round(rfc: Rfc, state: str, reason: str = "") -> None:
    """Withdrawal or cancellation: the open round stops; its signatures stay as they are."""
    now = clock.now()
    for rnd in ApprovalRound.objects.select_for_update().filter(rfc=rfc, state=RoundState.OPEN):
        _close(rnd, state, now)


def _close(rnd: ApprovalRound, state: str, now) -> None:
    """The round ends; whatever still waited in it is closed and nobody is mailed about it."""
    rnd.state, rnd.closed_at = state, now
    rnd.save(update_fields=["state", "closed_at"])
    ApprovalStep.objects.filter(round=rnd, state__in=[StepState.WAITING, StepState.PENDING]).update(
        state=StepState.CLOSED
    )
    Approval.objects.filter(step__round=rnd, state__in=[ApprovalState.WAITING, ApprovalState.PENDING]).update(
        state=ApprovalState.CLOSED, notify_due=False
    )


def void_stale_signatures(rfc: Rfc, actor=None) -> int:
    """An edit changed the content: every live signature over other content is void (§11.70)."""
    current = content_hash(rfc)
    stale = Signature.objects.filter(rfc=rfc, voided_at__isnull=True).exclude(content_hash=current)
    count = stale.update(voided_at=clock.now(), void_reason="The RFC's content changed after signing.")
    if count:
        record(
            "approvals.signatures.voided",
            rfc,
            actor=actor,
            after={"count": count, "content_hash": current},
            reason="The RFC's content changed after signing.",
        )
    return count


# --- Who may sign ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Capacity:
    """In what capacity a user may sign an approval: in their own right or on behalf of someone."""

    on_behalf_of: object | None = None


def _separation_of_duties(user, rfc: Rfc) -> None:
    """Never the author, nor who signed off the RFC's UAT. The sign-offs as read with the RFC when
    they were prefetched with it (the RFC page), else asked."""
    if rfc.author_id == user.pk:
        raise PermissionDenied(gettext("You wrote this RFC: you cannot approve it (separation of duties)."))
    if "signoffs" in getattr(rfc, "_prefetched_objects_cache", {}):
        signed_off = any(signoff.signed_by_id == user.pk for signoff in rfc.signoffs.all())
    else:
        signed_off = rfc.signoffs.filter(signed_by=user).exists()
    if signed_off:
        raise PermissionDenied(
            gettext("You signed off this RFC's UAT: you cannot approve it (separation of duties).")
        )


def active_absences(at=None) -> QuerySet:
    at = at or clock.now()
    return Absence.objects.filter(cancelled_at__isnull=True, starts_at__lte=at, ends_at__gt=at)


def _delegators(user) -> list:
    """The absent holders `user` stands in for now, with their roles read in one go."""
    absent = [absence.user for absence in active_absences().filter(delegate=user).select_related("user")]
    access.prime(absent)
    return absent


def _held_capacity(user, approval: Approval, delegators) -> Capacity | None:
    """The capacity in which `user` holds `approval`'s role at its site, or None; `delegators()` gives
    the absent holders, asked only when the user holds the role elsewhere (a delegate holds the same
    role elsewhere and stands in for an absent holder here)."""
    role = Role(approval.role)
    if access.has_role(user, role, approval.site):
        return Capacity()
    if access.has_any_role(user, [role]):
        for holder in delegators():
            if access.has_role(holder, role, approval.site):
                return Capacity(on_behalf_of=holder)
    return None


def capacity(user, approval: Approval) -> Capacity:
    """Raise PermissionDenied unless `user` may sign `approval`; say in which capacity."""
    _separation_of_duties(user, approval.rfc)
    held = _held_capacity(user, approval, lambda: _delegators(user))
    if held is None:
        raise PermissionDenied(
            gettext("Only a %(role)s of %(site)s signs this approval.")
            % {"role": Role(approval.role).label, "site": approval.site.code}
        )
    return held


def signable(user, rfc: Rfc, approvals) -> set[int]:
    """Of `rfc`'s pending `approvals` (with their sites), the ids `user` may sign now: `capacity`'s
    rule, on what the RFC page has already read (the author, the sign-offs prefetched with the RFC,
    the user's role map), the absences read at most once and only for a possible stand-in: no query
    for a holder, the author or a bystander."""
    try:
        _separation_of_duties(user, rfc)
    except PermissionDenied:
        return set()
    delegators = functools.cache(lambda: _delegators(user))
    return {a.pk for a in approvals if _held_capacity(user, a, delegators) is not None}


def _held_at(user, role: Role) -> Q:
    """The approvals of `role` at the sites where `user` holds it."""
    if access.has_role(user, role):
        return Q(role=role)
    return Q(role=role, site_id__in=sorted(access.sites_with_role(user, role)))


def approvals_for(user) -> QuerySet:
    """Pending approvals the user may sign now (own roles, or as a delegate): `capacity` as one query.

    The user's roles and the active absences they stand in for are read once, and the roles of the
    absent holders in one go (`access.prime`), so the number of queries does not grow with the
    approvals waiting; tests/approvals/test_approvals_for.py holds it equal to asking `capacity` one by one.
    """
    pending = Approval.objects.filter(state=ApprovalState.PENDING).select_related(
        "rfc", "rfc__release", "rfc__author", "site", "step", "step__round"
    )
    mine = access.all_roles(user)
    if not mine:
        return pending.none()
    allowed = Q(pk__in=[])
    for role in mine:
        allowed |= _held_at(user, role)
    # A delegate holds the same role elsewhere and stands in for an absent holder here.
    for holder in _delegators(user):
        for role in mine:
            if access.has_role(holder, role) or access.sites_with_role(holder, role):
                allowed |= _held_at(holder, role)
    # Separation of duties (as in `capacity`): never the author, nor who signed off the UAT. The
    # author's own RFCs as a subquery (a few ids from rfc_author_idx), not a join: the count of a
    # long queue then reads approvals alone instead of every RFC.
    own = Rfc.objects.filter(author=user).values("pk")
    signed_off = UatSignoff.objects.filter(rfc=OuterRef("rfc"), signed_by=user)
    return pending.filter(allowed).exclude(rfc__in=own).exclude(Exists(signed_off))


# --- Signing ---------------------------------------------------------------------------------------
VERBS = {Decision.APPROVE: "approved", Decision.CHANGES: "asked for changes", Decision.REJECT: "rejected"}


def _meaning(decision: str, role: Role, site, on_behalf_of) -> str:
    """The signature's meaning (§11.50): part of the signed record, so always in English."""
    verb = VERBS[Decision(decision)]
    with translation.override(None):
        text = f"{verb} as {role.label} of {site.code}"
    if on_behalf_of is not None:
        text += f" on behalf of {on_behalf_of.get_full_name() or on_behalf_of.get_username()}"
    return text


def check_decision(decision: str, reason: str) -> None:
    if decision not in Decision.values:
        raise ValidationError({"decision": gettext("Choose a decision: approve, request changes or reject.")})
    if decision == Decision.REJECT and not reason.strip():
        raise ValidationError({"reason": gettext("A rejection needs a reason.")})
    if decision == Decision.CHANGES and not reason.strip():
        raise ValidationError(
            {"reason": gettext("Say what should change: the author reads it as your question.")}
        )


@dataclass(frozen=True)
class Outcome:
    """An RFC transition the chain calls for; the workflow applies it."""

    transition: str
    reason: str = ""
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Signed:
    signature: Signature
    outcomes: list[Outcome]


def require_password(
    user,
    password: str,
    obj,
    refused_action: str,
    after: dict,
    error,
    *,
    otp_code: str = "",
    code_error=None,
) -> None:
    """§11.200: every signed act (a signature, a gate waiver) re-enters the password, checked by
    accounts (its backends and its lockout), and, where the signer has an authenticator, a current
    code (accounts.mfa). A refusal is audited as `refused_action` on `obj` and raised as `error(why)`
    (a code refusal as `code_error(why)` when given), where `why` says what was wrong."""
    if not mfa.signs_with_code_only(user):
        refused = signing.check_password(user, password)
        if refused is not None:
            record(refused_action, obj, actor=user, reason=refused.reason, after=after)
            raise error(refused.message)
    refused = mfa.check_signature_code(user, otp_code)
    if refused is not None:
        record(refused_action, obj, actor=user, reason=refused.reason, after=after)
        raise (code_error or error)(refused.message)


def verify_password(
    user, password: str, approval: Approval, decision: str, via: str, *, otp_code: str = ""
) -> None:
    """The signer re-enters the password (and, with MFA, a current code) at every signing; a failure
    is audited."""
    require_password(
        user,
        password,
        approval,
        "approvals.signature.refused",
        {"decision": decision, "via": via},
        lambda why: WrongPassword(gettext("%(why)s: the signature was not recorded.") % {"why": why}),
        otp_code=otp_code,
        code_error=lambda message: WrongCode(
            gettext("%(message)s The signature was not recorded.") % {"message": message}
        ),
    )


class WrongPassword(PermissionDenied):
    """The signer's password did not match (shown on the password field, not as a lack of rights)."""


class WrongCode(WrongPassword):
    """The signer's authenticator code was missing, wrong or used already (shown on the code field)."""


# --- Email links (A5): one approver, one use, an expiry, the content they were sent -----------------
def find_link(token_digest: str) -> EmailLink | None:
    return (
        EmailLink.objects.select_related(
            "user",
            "approval",
            "approval__rfc",
            "approval__rfc__release",
            "approval__rfc__author",
            "approval__site",
            "approval__step",
            "approval__step__round",
        )
        .filter(token_hash=token_digest)
        .first()
    )


def link_problem(link: EmailLink | None, user) -> str | None:
    """Why a link cannot be used by `user` now (None: it can)."""
    if link is None:
        return "unknown"
    if link.used_at is not None:
        return "used"
    if link.expires_at <= clock.now():
        return "expired"
    if link.approval.state != ApprovalState.PENDING:
        return "decided"
    if content_hash(link.approval.rfc) != link.content_hash:
        return "stale"
    if user.is_authenticated and user.pk != link.user_id:
        return "other_user"
    return None


def claim_link(link: EmailLink) -> None:
    """Mark the link used, once, whoever asks first (inside the signing transaction)."""
    if not EmailLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=clock.now()):
        raise StateConflict(gettext("This link has been used already."))


APPROVAL_STATES = {
    Decision.APPROVE: ApprovalState.APPROVED,
    Decision.CHANGES: ApprovalState.CHANGES,
    Decision.REJECT: ApprovalState.REJECTED,
}
SIGNATURE_EVENTS = {
    Decision.APPROVE: "approved",
    Decision.CHANGES: "changes_requested",
    Decision.REJECT: "rejected",
}


def sign_verified(
    user,
    approval: Approval,
    decision: str,
    reason: str = "",
    via: str = "portal",
    expected_hash: str | None = None,
) -> Signed:
    """The signing itself, after `verify_password`. The chain never moves the RFC: it returns the
    outcomes (the RFC transitions it calls for) and the workflow applies them in the same
    transaction. Lock order (workflow/transitions.py): the RFC first, then approval, step, round."""
    check_decision(decision, reason)
    outcomes: list[Outcome] = []
    with transaction.atomic():
        Rfc.objects.select_for_update().filter(pk=approval.rfc_id).first()
        locked = (
            Approval.objects.select_for_update().select_related("rfc", "site", "step").get(pk=approval.pk)
        )
        step = ApprovalStep.objects.select_for_update().get(pk=locked.step_id)
        rnd = ApprovalRound.objects.select_for_update().get(pk=step.round_id)
        if (
            locked.state != ApprovalState.PENDING
            or step.state != StepState.PENDING
            or rnd.state != RoundState.OPEN
        ):
            raise StateConflict(
                gettext("This approval is %(state)s; nothing to sign.")
                % {"state": locked.get_state_display().lower()}
            )
        cap = capacity(user, locked)
        seen = signed_content(locked.rfc)
        current = hash_content(seen)
        if current != rnd.content_hash or (expected_hash and expected_hash != current):
            raise StateConflict(
                gettext("The RFC changed since this approval was requested; reload it and sign again.")
            )
        now = clock.now()
        role = Role(locked.role)
        try:
            with transaction.atomic():
                signature = Signature.objects.create(
                    approval=locked,
                    rfc=locked.rfc,
                    signer=user,
                    on_behalf_of=cap.on_behalf_of,
                    printed_name=user.get_full_name() or user.get_username(),
                    signed_at=now,
                    decision=decision,
                    meaning=_meaning(decision, role, locked.site, cap.on_behalf_of),
                    reason=reason.strip(),
                    content_hash=current,
                    content=seen,
                    via=via,
                )
        except IntegrityError:
            raise StateConflict(gettext("Someone signed this approval a moment ago.")) from None
        locked.state = APPROVAL_STATES[Decision(decision)]
        locked.decided_at, locked.notify_due = now, False
        locked.save(update_fields=["state", "decided_at", "notify_due"])
        record(
            f"approvals.signature.{SIGNATURE_EVENTS[Decision(decision)]}",
            locked,
            actor=user,
            reason=reason.strip(),
            after={
                "meaning": signature.meaning,
                "printed_name": signature.printed_name,
                "signed_at": now.isoformat(),
                "content_hash": current,
                "via": via,
                "on_behalf_of": cap.on_behalf_of.get_username() if cap.on_behalf_of else None,
            },
        )
        if decision in (Decision.REJECT, Decision.CHANGES):
            _finish_round(rnd, step, RoundState.REJECTED, now)
            if rnd.is_review:  # the change is done; a failed review is on record for follow-up
                record("approvals.review.rejected", rnd, actor=user, reason=reason.strip())
            else:
                transition = "reject" if decision == Decision.REJECT else "request_changes"
                outcomes.append(Outcome(transition, reason=f"{signature.meaning}: {reason.strip()}"))
            return Signed(signature, outcomes)
        if locked.rfc.state == RfcState.SUBMITTED and not rnd.is_review:
            outcomes.append(Outcome("start_approval"))
        remaining = step.approvals.exclude(pk=locked.pk).filter(state=ApprovalState.PENDING)
        if step.rule == StepRule.ANY or not remaining.exists():
            remaining.update(state=ApprovalState.NOT_NEEDED, notify_due=False)
            step.state, step.completed_at = StepState.APPROVED, now
            step.save(update_fields=["state", "completed_at"])
            following = rnd.steps.filter(order__gt=step.order).order_by("order").first()
            if following is not None:
                _activate(following, now)
            else:
                rnd.state, rnd.closed_at = RoundState.APPROVED, now
                rnd.save(update_fields=["state", "closed_at"])
                if rnd.is_review:
                    record("approvals.review.completed", rnd, actor=user, after={"round": rnd.number})
                else:
                    outcomes.append(Outcome("approve", data={"round": rnd.number}))
    return Signed(signature, outcomes)


def _finish_round(rnd: ApprovalRound, step: ApprovalStep, state: str, now) -> None:
    step.state, step.completed_at = StepState.REJECTED, now
    step.save(update_fields=["state", "completed_at"])
    _close(rnd, state, now)


# --- Reading a chain -------------------------------------------------------------------------
def rounds_of(rfc: Rfc, latest: bool = False) -> list[ApprovalRound]:
    """The RFC's approval rounds, the last first (only the last with `latest`), each with its steps in
    order (`round.step_list`), each step with its approvals by site and role (`step.approval_list`),
    each approval with its signatures as signed (`approval.signature_list`). Four queries at most, and
    fewer for a chain not yet started: each level is asked for by the ids above it, in its own order
    (the models' default orders would join up to the RFC to sort)."""
    rounds = (
        ApprovalRound.objects.filter(rfc=rfc).select_related("standard_use__template").order_by("-number")
    )
    rounds = list(rounds[:1] if latest else rounds)
    steps = _grouped(rounds, ApprovalStep.objects.filter(round__in=rounds).order_by("order"), "round_id")
    approvals = _grouped(
        steps,
        Approval.objects.filter(step__in=steps).select_related("site").order_by("site__code", "role", "pk"),
        "step_id",
    )
    _grouped(
        approvals,
        Signature.objects.filter(approval__in=approvals)
        .select_related("signer", "on_behalf_of")
        .order_by("signed_at", "pk"),
        "approval_id",
    )
    return rounds


_CHILDREN = {ApprovalRound: "step_list", ApprovalStep: "approval_list", Approval: "signature_list"}


def _grouped(parents: list, children: QuerySet, parent_field: str) -> list:
    """Sets each parent's list of `children` (read only when there is a parent); returns the children."""
    found = list(children) if parents else []
    by_parent = {parent.pk: [] for parent in parents}
    for child in found:
        by_parent[getattr(child, parent_field)].append(child)
    for parent in parents:
        setattr(parent, _CHILDREN[type(parent)], by_parent[parent.pk])
    return found


def approvals_complete(rfc: Rfc) -> tuple[bool, str]:
    """The gate: the last round approved and every live signature over today's content."""
    rnd = ApprovalRound.objects.filter(rfc=rfc, purpose=RoundPurpose.APPROVAL).order_by("-number").first()
    if rnd is None:
        return False, gettext("Not submitted for approval yet.")
    if rnd.state != RoundState.APPROVED:
        pending = ApprovalStep.objects.filter(round=rnd, state=StepState.PENDING).first()
        state = rnd.get_state_display().lower()
        if pending:
            return False, gettext("Approval round %(number)s is %(state)s: waiting for %(roles)s.") % {
                "number": rnd.number,
                "state": state,
                "roles": pending.label,
            }
        return False, gettext("Approval round %(number)s is %(state)s.") % {
            "number": rnd.number,
            "state": state,
        }
    current = content_hash(rfc)
    standard = StandardChangeUse.objects.filter(round=rnd).select_related("template").first()
    if standard is not None:  # approved by a standard change (approvals/standard.py), not by signatures
        template = standard.template
        if rnd.content_hash != current:
            return False, gettext("The RFC changed after its standard change approved it: submit it again.")
        if template.state == StandardChangeState.SUSPENDED:
            return False, gettext(
                "The standard change %(name)s was suspended (%(reason)s): withdraw the RFC and submit it "
                "through the approval chain."
            ) % {"name": template.name, "reason": template.suspend_reason}
        return True, gettext("Approved as the standard change %(name)s (round %(number)s, no chain).") % {
            "name": template.name,
            "number": rnd.number,
        }
    signatures = Signature.objects.filter(approval__step__round=rnd, decision=Decision.APPROVE)
    if (
        signatures.filter(voided_at__isnull=False).exists()
        or signatures.exclude(content_hash=current).exists()
    ):
        return False, gettext("The RFC changed after it was approved: its signatures are void.")
    return True, gettext("Approved in round %(number)s (%(count)s signatures).") % {
        "number": rnd.number,
        "count": signatures.count(),
    }


def reminder_delay() -> timedelta:
    return timedelta(hours=settings.APPROVAL_REMINDER_HOURS)


def escalation_delay() -> timedelta:
    return timedelta(hours=settings.APPROVAL_ESCALATION_HOURS)


# --- Absences and delegation ---------------------------------------------------------
APPROVER_ROLES = access.APPROVER_ROLES


def set_absence(user, *, delegate, starts_at, ends_at, reason: str = "") -> Absence:
    """An approver away names a delegate who holds one of their approver roles."""
    mine = access.all_roles(user) & APPROVER_ROLES
    if not mine:
        raise PermissionDenied(gettext("Only approvers name a delegate."))
    errors = {}
    if delegate is None or delegate.pk == user.pk:
        errors["delegate"] = gettext("Name someone else as your delegate.")
    elif not access.all_roles(delegate) & mine:
        errors["delegate"] = gettext("%(delegate)s holds none of your approver roles (%(roles)s).") % {
            "delegate": delegate.get_full_name() or delegate.get_username(),
            "roles": ", ".join(sorted(str(r.label) for r in mine)),
        }
    if starts_at is None or ends_at is None or ends_at <= starts_at:
        errors["ends_at"] = gettext("The absence must end after it starts.")
    elif ends_at <= clock.now():
        errors["ends_at"] = gettext("The absence is over already.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        absence = Absence.objects.create(
            user=user, delegate=delegate, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()[:200]
        )
        record(
            "approvals.absence.set",
            absence,
            actor=user,
            after={
                "delegate": delegate.get_username(),
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "reason": absence.reason,
            },
        )
    return absence


def cancel_absence(user, absence: Absence) -> None:
    if absence.user_id != user.pk:
        raise PermissionDenied(gettext("Only the absent approver cancels their absence."))
    with transaction.atomic():
        updated = Absence.objects.filter(pk=absence.pk, cancelled_at__isnull=True).update(
            cancelled_at=clock.now()
        )
        if not updated:
            raise StateConflict(gettext("This absence is cancelled already."))
        record(
            "approvals.absence.cancelled",
            absence,
            actor=user,
            before={"delegate": absence.delegate.get_username()},
        )


def delegate_candidates(user) -> QuerySet:
    """People who hold one of the user's approver roles (anywhere) and could stand in."""
    from django.contrib.auth.models import Group

    mine = access.all_roles(user) & APPROVER_ROLES
    codenames = [role.codename for role in mine]
    groups = Group.objects.filter(permissions__codename__in=codenames)
    from guardian.models import UserObjectPermission

    per_site = UserObjectPermission.objects.filter(permission__codename__in=codenames).values("user_id")
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__in=groups) | Q(pk__in=per_site))
        .exclude(pk=user.pk)
        .distinct()
        .order_by("username")
    )


def visible_to(user, approval: Approval) -> bool:
    """An approval is visible with its RFC: to users of one of the RFC's sites."""
    from releases.services import visible_rfcs

    return visible_rfcs(user).filter(pk=approval.rfc_id).exists()


# --- What changed since the last signature (shown on the decision page) ---------------------------------
FIELD_LABELS = {
    "title": gettext_lazy("Title"),
    "description": gettext_lazy("Description"),
    "release": gettext_lazy("Release"),
    "change_class": gettext_lazy("Class of change"),
    "estimated_downtime_minutes": gettext_lazy("Estimated downtime (minutes)"),
    "retraining_note": gettext_lazy("Operator retraining"),
    "rollback_plan": gettext_lazy("Rollback plan"),
    "high_risk": gettext_lazy("High risk"),
    "requested_timing": gettext_lazy("Requested timing"),
    "emergency": gettext_lazy("Emergency"),
    "emergency_reason": gettext_lazy("Emergency reason"),
    "impact": gettext_lazy("Impact (lines and modules)"),
}


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


def _shown(value) -> str:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return "; ".join(
            f"{v.get('site')}: {', '.join(v.get('lines') or []) or '—'} · {', '.join(v.get('modules') or []) or '—'}"
            if isinstance(v, dict)
            else str(v)
            for v in value
        )
    return "" if value is None else str(value)


def changes_since_last_signature(rfc: Rfc) -> tuple[Signature | None, list[Change]]:
    """The latest signature of `rfc` that recorded what it saw, and what differs from the content now."""
    last = Signature.objects.filter(rfc=rfc).exclude(content={}).order_by("-signed_at", "-id").first()
    if last is None:
        return None, []
    now, then = signed_content(rfc), last.content
    changes = [
        Change(label, _shown(then.get("fields", {}).get(key)), _shown(now["fields"].get(key)))
        for key, label in FIELD_LABELS.items()
        if then.get("fields", {}).get(key) != now["fields"].get(key)
    ]
    if then.get("release") != now["release"]:
        changes.append(
            Change(
                gettext("Artifact or its SQL"),
                gettext("as signed"),
                gettext("changed (new checksum or scripts)"),
            )
        )
    added = set(now["evidence"]) - set(then.get("evidence", []))
    removed = set(then.get("evidence", [])) - set(now["evidence"])
    if added or removed:
        changes.append(
            Change(
                gettext("Evidence"),
                ngettext(
                    "%(count)s file(s) no longer current", "%(count)s file(s) no longer current", len(removed)
                )
                % {"count": len(removed)},
                ngettext("%(count)s new file(s)", "%(count)s new file(s)", len(added))
                % {"count": len(added)},
            )
        )
    return last, changes


def changes_requested(rfc: Rfc) -> Signature | None:
    """The signature that sent `rfc` back to its author with a question, if that is the last word."""
    last = Signature.objects.filter(rfc=rfc).order_by("-signed_at", "-id").first()
    return last if last is not None and last.decision == Decision.CHANGES else None
