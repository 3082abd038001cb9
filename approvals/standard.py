"""Standard changes (ITIL change models): pre-approved templates for routine work.

Change models as data: an **emergency** change is an RFC flagged emergency (the CIO or the Plant
Director, W6); a **normal** change goes through the chain of its class; a **standard** change is an
RFC that matches an active template and is approved by it instead of the chain.

A template names the routine work, its scope (products, sites, the highest class of change it
covers) and an expiry. An admin proposes it; it becomes active once the normal chain of its highest
class has signed it (each step's role, holders of the role at every site of the template, each with
the password re-entered — the same signed act as an RFC signature). A matching RFC — the product,
every target site, a class no higher than the template's, neither an emergency nor high risk — may
then be submitted "as a standard change": its approval round is recorded as approved by the
template, with no signatures, bound to the RFC's content like any approval. Every gate, window and
piece of evidence still applies. Each use is audited and listed on the template; a PROD rollback or
failure of an RFC that used a template suspends the template at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, pgettext

from approvals import services as approvals
from approvals.models import (
    ApprovalPolicy,
    ApprovalRound,
    RoundPurpose,
    RoundState,
    StandardChange,
    StandardChangeSignature,
    StandardChangeState,
    StandardChangeUse,
    StepRule,
)
from audit.services import record
from core import clock
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from environments import access
from releases.models import Rfc
from releases.versioning import ChangeClass

RULE = gettext_noop("Standard change")  # the rule's name: a key, translated where shown
CLASS_ORDER = {ChangeClass.PATCH: 0, ChangeClass.MINOR: 1, ChangeClass.MAJOR: 2}
MAX_VALIDITY = timedelta(days=2 * 366)


def describe(template: StandardChange) -> dict:
    """What the signers approve (hashed into `content_hash`)."""
    return {
        "name": template.name,
        "description": template.description,
        "products": sorted(template.products),
        "sites": sorted(site.code for site in template.sites.all()),
        "max_class": template.max_class,
        "expires_at": template.expires_at.isoformat(),
    }


def steps(template: StandardChange) -> list[tuple[list[str], str]]:
    """The normal chain of the template's highest class: (roles, rule) per step."""
    approvals.ensure_default_policies()
    policy = ApprovalPolicy.objects.prefetch_related("steps").get(change_class=template.max_class)
    return [(list(step.roles), step.rule) for step in policy.steps.all()]


def open_steps(template: StandardChange) -> list[list[str]]:
    """The roles of each step not yet signed (ALL: every role; ANY: any one of them)."""
    signed = set(template.signatures.values_list("role", flat=True))
    missing = []
    for roles, rule in steps(template):
        if rule == StepRule.ANY:
            if not signed & set(roles):
                missing.append(roles)
        else:
            missing.extend([role] for role in roles if role not in signed)
    return missing


def _clean(name: str, description: str, products, sites, max_class: str, expires_at: datetime) -> dict:
    errors = {}
    if not (name or "").strip():
        errors["name"] = _("Name the routine work, e.g. Label template update.")
    if not (description or "").strip():
        errors["description"] = _("Say what the work is and how it is done safely.")
    products = [str(p).strip() for p in (products or []) if str(p).strip()]
    if not products:
        errors["products"] = _("Name at least one product, e.g. MES.")
    if not sites:
        errors["sites"] = _("Choose at least one site.")
    if max_class not in CLASS_ORDER:
        errors["max_class"] = _("Choose patch, minor or major.")
    now = clock.now()
    if expires_at is None or expires_at <= now:
        errors["expires_at"] = _("The expiry is in the future.")
    elif expires_at > now + MAX_VALIDITY:
        errors["expires_at"] = _("A template is approved for two years at most.")
    if errors:
        raise ValidationError(errors)
    return {"name": name.strip(), "description": description.strip(), "products": products}


def propose(user, *, name, description, products, sites, max_class, expires_at) -> StandardChange:
    """An admin of every site proposes a template; the chain then signs it."""
    cleaned = _clean(name, description, products, sites, max_class, expires_at)
    for site in sites:
        if not access.has_role(user, Role.ADMIN, site):
            raise PermissionDenied(
                _("Only an admin of %(site)s proposes standard changes for it.") % {"site": site.code}
            )
    with transaction.atomic():
        template = StandardChange.objects.create(
            **cleaned, max_class=max_class, expires_at=expires_at, created_by=user, created_at=clock.now()
        )
        template.sites.set(sites)
        template.content_hash = approvals.hash_content(describe(template))
        template.save(update_fields=["content_hash"])
        with translation.override(None):  # the audit trail keeps the steps in English
            steps_recorded = steps_text(template)
        record(
            "approvals.standard_change.proposed",
            template,
            actor=user,
            after={**describe(template), "steps": steps_recorded},
        )
    return template


def steps_text(template: StandardChange) -> list[str]:
    any_one, every = pgettext("roles, one signs", "or"), pgettext("roles that all sign", "and")
    return [
        f" {any_one if rule == StepRule.ANY else every} ".join(str(Role(r).label) for r in roles)
        for roles, rule in steps(template)
    ]


def signable_role(user, template: StandardChange) -> str | None:
    """The open role `user` may sign for: held at every site of the template."""
    if user.pk == template.created_by_id:
        return None  # whoever proposed it does not approve it too
    sites = list(template.sites.all())
    for roles in open_steps(template):
        for role in roles:
            if all(access.has_role(user, Role(role), site) for site in sites):
                return role
    return None


def sign(user, template: StandardChange, password: str, *, otp_code: str = "") -> StandardChangeSignature:
    role = signable_role(user, template) if template.state == StandardChangeState.PROPOSED else None
    if role is not None:  # the password first, outside the transaction: a refusal stays on record
        approvals.require_password(
            user,
            password,
            template,
            "approvals.standard_change.signature_refused",
            {"role": role},
            lambda why: approvals.WrongPassword(_("%(why)s: the signature was not recorded.") % {"why": why}),
            otp_code=otp_code,
            code_error=lambda message: approvals.WrongCode(
                _("%(message)s The signature was not recorded.") % {"message": message}
            ),
        )
    with transaction.atomic():
        locked = StandardChange.objects.select_for_update().get(pk=template.pk)
        if locked.state != StandardChangeState.PROPOSED:
            raise StateConflict(
                _("%(name)s is %(state)s; nothing to sign.")
                % {"name": locked.name, "state": locked.get_state_display().lower()}
            )
        role = signable_role(user, locked)
        if role is None:
            raise PermissionDenied(_("You hold no role this template still needs, at all its sites."))
        current = approvals.hash_content(describe(locked))
        if current != locked.content_hash:
            raise StateConflict(_("The template changed since it was proposed: propose it again."))
        signature = StandardChangeSignature.objects.create(
            template=locked, role=role, signed_by=user, signed_at=clock.now(), content_hash=current
        )
        with translation.override(None):  # the audit trail keeps the role in English
            role_label = str(Role(role).label)
        record("approvals.standard_change.signed", locked, actor=user, after={"role": role_label})
        if not open_steps(locked):
            locked.state = StandardChangeState.ACTIVE
            locked.approved_at = clock.now()
            locked.save(update_fields=["state", "approved_at"])
            record("approvals.standard_change.approved", locked, actor=user, after=describe(locked))
    return signature


def suspend(template: StandardChange, reason: str, actor=None) -> bool:
    """Suspend an active template (an admin by hand, or the portal after a rollback); False if it was not active."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the template is suspended.")})
    with transaction.atomic():
        locked = StandardChange.objects.select_for_update().get(pk=template.pk)
        if locked.state == StandardChangeState.SUSPENDED:
            return False
        if actor is not None and not all(access.has_role(actor, Role.ADMIN, s) for s in locked.sites.all()):
            raise PermissionDenied(_("Only an admin of the template's sites suspends it."))
        locked.state = StandardChangeState.SUSPENDED
        locked.suspended_at = clock.now()
        locked.suspend_reason = reason.strip()
        locked.save(update_fields=["state", "suspended_at", "suspend_reason"])
        record(
            "approvals.standard_change.suspended",
            locked,
            actor=actor,
            actor_name=None if actor else "system",
            reason=reason.strip(),
        )
    return True


def refusal(template: StandardChange, rfc: Rfc, now: datetime | None = None) -> str | None:
    """Why `rfc` may not be approved by `template` (None: it matches)."""
    now = now or clock.now()
    if template.state != StandardChangeState.ACTIVE:
        return _("The standard change %(name)s is %(state)s.") % {
            "name": template.name,
            "state": template.get_state_display().lower(),
        }
    if template.expires_at <= now:
        return _("The standard change %(name)s expired on %(date)s.") % {
            "name": template.name,
            "date": f"{template.expires_at:%Y-%m-%d}",
        }
    if rfc.emergency:
        return _("An emergency change goes to the CIO or the Plant Director, not to a template.")
    if rfc.is_high_risk:
        return _("A high-risk change goes through the chain, never a template.")
    if rfc.release.product not in template.products:
        return _("%(name)s covers %(products)s, not %(product)s.") % {
            "name": template.name,
            "products": ", ".join(template.products),
            "product": rfc.release.product,
        }
    covered = {site.pk for site in template.sites.all()}
    outside = [i.site.code for i in rfc.impacts.all() if i.site_id not in covered]
    if outside:
        return _("%(name)s does not cover %(sites)s.") % {"name": template.name, "sites": ", ".join(outside)}
    if CLASS_ORDER.get(rfc.change_class, 9) > CLASS_ORDER[template.max_class]:
        return _("%(name)s covers changes up to %(max)s; this one is %(class)s.") % {
            "name": template.name,
            "max": template.get_max_class_display().lower(),
            "class": rfc.get_change_class_display().lower(),
        }
    return None


def matching(rfc: Rfc) -> list[StandardChange]:
    """The active templates that would approve `rfc` now."""
    candidates = StandardChange.objects.filter(
        state=StandardChangeState.ACTIVE, expires_at__gt=clock.now()
    ).prefetch_related("sites")
    return [t for t in candidates if refusal(t, rfc) is None]


def resolve(value) -> StandardChange:
    if isinstance(value, StandardChange):
        return value
    found = StandardChange.objects.filter(uuid=value).first() if _is_uuid(value) else None
    if found is None:
        raise ValidationError({"standard_change": _("Unknown standard change.")})
    return found


def _is_uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def use(user, rfc: Rfc, template: StandardChange) -> ApprovalRound:
    """Inside the submission: the approval round, approved by the template (the RFC locked first)."""
    locked = StandardChange.objects.select_for_update().get(pk=template.pk)
    why = refusal(locked, rfc)
    if why:
        raise RuleViolation(why, rule=RULE)
    now = clock.now()
    number = (
        ApprovalRound.objects.filter(rfc=rfc).order_by("-number").values_list("number", flat=True).first()
        or 0
    ) + 1
    rnd = ApprovalRound.objects.create(
        rfc=rfc,
        number=number,
        change_class=rfc.change_class,
        high_risk=False,
        content_hash=approvals.content_hash(rfc),
        created_at=now,
        closed_at=now,
        state=RoundState.APPROVED,
        purpose=RoundPurpose.APPROVAL,
    )
    StandardChangeUse.objects.create(template=locked, rfc=rfc, round=rnd, used_by=user, used_at=now)
    record("approvals.standard_change.used", locked, actor=user, after={"rfc": rfc.number, "round": number})
    return rnd


def used_by(rfc: Rfc) -> StandardChangeUse | None:
    """The template the RFC's newest approval round came from, if any."""
    return (
        StandardChangeUse.objects.filter(rfc=rfc)
        .select_related("template")
        .order_by("-round__number")
        .first()
    )


def after_failure(rfc: Rfc, what: str) -> None:
    """A PROD rollback or failure of an RFC approved by a template suspends the template."""
    found = used_by(rfc)
    if found is not None and found.template.state == StandardChangeState.ACTIVE:
        suspend(
            found.template, f"{rfc.number} {what} in PROD: the template is suspended until it is reviewed."
        )
