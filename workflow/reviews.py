"""Post-implementation review for every change: opened when the PROD deployments end (deployed, rolled
back or failed), completed by the author or a release manager (or admin) of a target site with a close
code, what happened and follow-ups; the RFC closes only once it is complete. An emergency change keeps
its approval-round review (the approvers' sign-off) besides this account of the outcome.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from audit.services import record
from core import clock
from core.errors import RuleViolation, StateConflict
from core.roles import Role
from deployments.models import Deployment
from environments import access
from notify import events
from releases import services as rfc_services
from releases.models import Rfc
from releases.states import ENDED_STATES, RfcState
from workflow.models import CloseCode, Review

RULE = gettext_noop("Post-implementation review")  # the rule's name: a key, translated where shown
# The states in which an RFC's PROD deployments have ended and its review is (or becomes) open.
ENDED = ENDED_STATES


def open_review(ctx) -> None:
    """Effect of mark_deployed / mark_rolled_back / mark_failed (workflow/transitions.py): a review of
    this attempt, unless one is open already."""
    if not Review.objects.filter(rfc=ctx.rfc, completed_at__isnull=True).exists():
        review = Review.objects.create(
            rfc=ctx.rfc,
            outcome=ctx.rfc.state,
            opened_at=clock.now(),
            last_deployment_id=_last_deployment(ctx.rfc),
        )
        record("releases.review.opened", review, actor_name="system", after={"outcome": review.outcome})
        with translation.override(None):  # the event's facts are kept (mail outbox, webhooks): in English
            ended = ctx.rfc.get_state_display().lower()
        events.emit("review.due", ctx.rfc, data={"reason": f"The change ended {ended}."})


def _last_deployment(rfc: Rfc) -> int:
    return Deployment.objects.filter(rfc=rfc).aggregate(last=Max("pk"))["last"] or 0


def attempt_boundary(rfc: Rfc) -> int:
    """Deployments of the RFC's current attempt have ids above this (0: its first attempt)."""
    return Review.objects.filter(rfc=rfc).values_list("last_deployment_id", flat=True).first() or 0


def may_review(user, rfc: Rfc) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if rfc.author_id == user.pk:
        return True
    roles = {Role.RELEASE_MANAGER, Role.ADMIN}
    return any(access.has_any_role(user, roles, site) for site in rfc_services.rfc_sites(rfc))


def review_of(rfc: Rfc) -> Review | None:
    """The review of the RFC's last attempt; an unsaved one for an RFC that ended before reviews
    existed; None while the RFC is on its way (no query then)."""
    if rfc.state not in ENDED and rfc.state != RfcState.CLOSED:
        return None
    review = Review.objects.filter(rfc=rfc).select_related("completed_by").first()
    if review is None and rfc.state in ENDED:
        review = Review(rfc=rfc, outcome=rfc.state, opened_at=rfc.updated_at)
    return review


CLOSING = gettext_noop("Complete the post-implementation review of %(rfc)s before closing it.")
REPLANNING = gettext_noop("Complete the post-implementation review of %(rfc)s before re-planning it.")


def require_done(rfc: Rfc, refusal: str = CLOSING) -> None:
    """Closing or re-planning needs the last attempt's review completed (fail closed: no review at
    all is not a completed one). `refusal` (CLOSING or REPLANNING) says so."""
    review = review_of(rfc)
    if review is None or not review.done:
        raise RuleViolation(_(refusal) % {"rfc": rfc.number}, rule=RULE)


def complete(user, rfc: Rfc, *, close_code: str, what_happened: str, follow_ups: str = "") -> Review:
    what_happened, follow_ups = (what_happened or "").strip(), (follow_ups or "").strip()
    errors = {}
    if close_code not in CloseCode.values:
        errors["close_code"] = _("Choose how the change ended.")
    if not what_happened:
        errors["what_happened"] = _("Say what happened.")
    for name, value in (("what_happened", what_happened), ("follow_ups", follow_ups)):
        if len(value) > 10_000:
            errors[name] = _("At most 10,000 characters.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        Rfc.objects.select_for_update().filter(pk=rfc.pk).first()  # lock order: the RFC first
        current = Rfc.objects.get(pk=rfc.pk)
        review = Review.objects.select_for_update().filter(rfc=rfc, completed_at__isnull=True).first()
        if review is None and current.state in ENDED and not Review.objects.filter(rfc=rfc).exists():
            # An RFC that ended before reviews existed gets its review when someone writes it.
            review = Review.objects.create(
                rfc=current,
                outcome=current.state,
                opened_at=clock.now(),
                last_deployment_id=_last_deployment(current),
            )
        if review is None:
            if current.state in ENDED or current.state == RfcState.CLOSED:
                raise StateConflict(_("The review of %(rfc)s is complete already.") % {"rfc": rfc.number})
            raise StateConflict(
                _("%(rfc)s has no review open: its PROD deployment has not ended.") % {"rfc": rfc.number}
            )
        if not may_review(user, rfc):
            raise PermissionDenied(_("You may not review %(rfc)s.") % {"rfc": rfc.number})
        review.close_code, review.what_happened, review.follow_ups = close_code, what_happened, follow_ups
        review.completed_by, review.completed_at = user, clock.now()
        review.save()
        record(
            "releases.review.completed",
            review,
            actor=user,
            after={"close_code": close_code, "what_happened": what_happened, "follow_ups": follow_ups},
        )
    return review
