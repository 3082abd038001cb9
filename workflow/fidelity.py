"""Risk acceptance for staging gaps (issue 19): a business owner signs that UAT not having some
high-criticality dependencies the RFC touches as they are in PROD is an accepted risk.

Who: the plant director or the operations manager of every site with an open gap (the site's
business and process owners in core/roles.py; IT roles and admins prove the change, they do not
own the business risk). When: before the RFC starts deploying. How: with a reason and the password
re-entered (and a code where the signer has an authenticator) like a gate waiver; a refusal is
audited (`releases.staging_gaps.acceptance_refused`) and records nothing. The acceptance binds the
artifact's SHA-256 and exactly the gaps open at that moment (`releases.staging_gaps.accepted`): a
new artifact or a changed gap needs a new acceptance.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from approvals import services as approvals
from audit.services import record
from core import clock
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from deployments import fidelity
from environments import access
from releases.models import Rfc, RiskAcceptance
from releases.states import BEFORE_DEPLOYMENT

OWNERS = frozenset({Role.PLANT_DIRECTOR, Role.OPERATIONS_MANAGER})
MAX_REASON = 2000


class WrongPassword(ValidationError):
    """The password re-entered for an acceptance did not match: a 400 on the password field."""


def may_accept(user, rfc: Rfc, gaps: list | None = None) -> bool:
    """A business owner of every site with an open gap, while the RFC has not started deploying."""
    if rfc.state not in BEFORE_DEPLOYMENT:
        return False
    found = fidelity.open_gaps(rfc) if gaps is None else gaps
    return bool(found) and all(access.has_any_role(user, OWNERS, t.site) for t in found)


def accept(user, rfc: Rfc, reason: str, password: str, otp_code: str = "") -> RiskAcceptance:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the business accepts the risk.")})
    if len(reason) > MAX_REASON:
        raise ValidationError(
            {"reason": _("Give the reason in at most %(count)s characters.") % {"count": MAX_REASON}}
        )
    gaps = fidelity.open_gaps(rfc)
    if not gaps:
        raise StateConflict(_("%(rfc)s has no staging gap to accept.") % {"rfc": rfc.number})
    if not may_accept(user, rfc, gaps):
        raise PermissionDenied(
            _(
                "Only the plant director or the operations manager of each site with a gap accepts the "
                "staging risk of %(rfc)s, before it deploys."
            )
            % {"rfc": rfc.number}
        )
    approvals.require_password(
        user,
        password,
        rfc,
        "releases.staging_gaps.acceptance_refused",
        {"gaps": [t.gap() for t in gaps]},
        lambda why: WrongPassword(
            {"password": _("%(why)s: the acceptance was not recorded.") % {"why": why}}
        ),
        otp_code=otp_code,
        code_error=lambda message: WrongPassword(
            {"otp_code": _("%(message)s The acceptance was not recorded.") % {"message": message}}
        ),
    )
    with transaction.atomic():
        locked = Rfc.objects.select_for_update().get(pk=rfc.pk)
        current = Rfc.objects.select_related("release").prefetch_related("impacts__site").get(pk=locked.pk)
        if current.state not in BEFORE_DEPLOYMENT:
            raise StateConflict(
                _("%(rfc)s is %(state)s: too late to accept a staging risk.")
                % {"rfc": current.number, "state": current.get_state_display().lower()}
            )
        sha256 = current.release.artifact_sha256
        if len(sha256) != 64:
            raise RuleViolation(
                _("An acceptance is bound to the artifact's SHA-256, and none is recorded."),
                rule=fidelity.RULE,
            )
        gaps = fidelity.open_gaps(current)
        if not gaps or not may_accept(user, current, gaps):
            raise StateConflict(_("The staging gaps changed meanwhile: reload the RFC and look again."))
        acceptance = RiskAcceptance.objects.create(
            rfc=current,
            artifact_sha256=sha256,
            gaps=[t.gap() for t in gaps],
            reason=reason,
            accepted_by=user,
            accepted_at=clock.now(),
        )
        record(
            "releases.staging_gaps.accepted",
            current,
            actor=user,
            reason=reason,
            after={"acceptance": acceptance.pk, "gaps": acceptance.gaps, "artifact_sha256": sha256},
        )
    return acceptance


def acceptances_of(rfc: Rfc) -> list[tuple[RiskAcceptance, bool]]:
    """Every acceptance of the RFC, with whether it is for the artifact the RFC carries now."""
    return [
        (a, a.artifact_sha256 == rfc.release.artifact_sha256)
        for a in RiskAcceptance.objects.filter(rfc=rfc).select_related("accepted_by")
    ]
