"""Scheduling an approved RFC into its sites' PROD calendars (W1–W6).

`plan()` answers "may it start then?" without writing; `schedule()` writes a Deployment once the
calendar, the gates and the environment's other deployments all agree. The same `plan()` runs
again as the "Deployment window" gate before dispatch and right before the worker touches PROD.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext, gettext_noop

from audit.services import record
from core import clock, jobs
from core.errors import RuleViolation, StateConflict
from core.inputs import check_moment
from core.roles import Role
from deployments import conflicts, dispatcher, promotion
from deployments.models import Deployment, DeploymentState
from deployments.states import ACTIVE as ACTIVE_DEPLOYMENT_STATES
from deployments.states import ROLLBACK_REQUESTABLE, move
from environments import access, calendar
from environments.models import Environment, Site, Tier
from environments.windows import rules_for
from releases import gates
from releases.models import Rfc
from releases.states import RfcState

DISPATCH_TASK = "deployments.tasks.dispatch_deployments"  # wakes the dispatcher before its next beat
SCHEDULERS = frozenset({Role.RELEASE_MANAGER, Role.ADMIN})
WINDOW_GATE = gettext_noop("Deployment window")  # the gate's name: a key, translated where shown
MAX_DURATION = 12 * 60
# Offered slots start at least this far ahead: a slot offered at 09:59:59 for 10:00 would be in the
# past by the time the form comes back.
BOOKING_LEAD = timedelta(minutes=2)


@dataclass(frozen=True)
class Plan:
    environment: Environment
    decision: calendar.Decision
    conflicts: list[Deployment]

    @property
    def allowed(self) -> bool:
        return self.decision.allowed and not self.conflicts

    @property
    def reasons(self) -> list[str]:
        tz = self.environment.site.zone
        return self.decision.reasons + [
            gettext("%(environment)s is taken by %(rfc)s %(start)s–%(end)s")
            % {
                "environment": self.environment,
                "rfc": d.rfc.number,
                "start": f"{d.scheduled_start.astimezone(tz):%a %d %b %H:%M}",
                "end": f"{d.scheduled_end.astimezone(tz):%H:%M %Z}",
            }
            for d in self.conflicts
        ]


def default_duration(rfc: Rfc) -> int:
    """Minutes the deployment itself takes, before smoke test and rollback budget: the declared
    downtime, at least 30 minutes."""
    return max(rfc.estimated_downtime_minutes, 30)


def prod_of(site: Site) -> Environment:
    try:
        return Environment.objects.select_related("site").get(site=site, tier=Tier.PROD)
    except Environment.DoesNotExist:
        raise ValidationError(
            {"site": gettext("%(site)s has no PROD environment.") % {"site": site.code}}
        ) from None


def parse_local(value: str | datetime, tz: ZoneInfo) -> datetime:
    """A start typed in the site's local time → UTC. A time the clocks skip is refused; one that
    occurs twice means its first occurrence. A time with an offset is taken as it is."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                {"start": gettext("Give the start as date and time, e.g. 2026-12-01 09:00.")}
            ) from None
    check_moment(value, "start")
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    aware = value.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise ValidationError(
            {
                "start": gettext(
                    "%(start)s does not exist in %(zone)s: the clocks jump forward then. Pick a time after "
                    "the change."
                )
                % {"start": f"{value:%Y-%m-%d %H:%M}", "zone": tz.key}
            }
        )
    return aware.astimezone(UTC)


def _conflicts(environment: Environment, start: datetime, end: datetime, exclude_rfc: Rfc | None = None):
    found = Deployment.objects.filter(
        environment=environment,
        state__in=ACTIVE_DEPLOYMENT_STATES,
        scheduled_start__lt=end,
        scheduled_end__gt=start,
    ).select_related("rfc")
    if exclude_rfc is not None:
        found = found.exclude(rfc=exclude_rfc)
    return list(found)


def plan(rfc: Rfc, site: Site, start: datetime, duration: int, *, handover_override: bool = False) -> Plan:
    if not 0 < duration <= MAX_DURATION:
        raise ValidationError(
            {"duration": gettext("The duration is between 1 and %(max)s minutes.") % {"max": MAX_DURATION}}
        )
    environment = prod_of(site)
    decision = calendar.check(
        rules_for(environment), start, duration, emergency=rfc.emergency, handover_override=handover_override
    )
    return Plan(environment, decision, _conflicts(environment, decision.start, decision.end, exclude_rfc=rfc))


def slots(rfc: Rfc, site: Site, after: datetime, duration: int, count: int = 6) -> list[calendar.Slot]:
    """The next allowed starts for this RFC at `site`, minus the times other deployments hold."""
    environment = prod_of(site)
    rules = rules_for(environment)
    found: list[calendar.Slot] = []
    cursor = after
    for _ in range(5):  # a few batches at most, never a minute-by-minute scan
        batch = calendar.next_slots(
            rules,
            cursor,
            duration,
            count=count * 2,
            emergency=rfc.emergency,
            step_minutes=settings.SLOT_STEP_MINUTES,
        )
        if not batch:
            break
        taken = [
            (d.scheduled_start, d.scheduled_end)
            for d in Deployment.objects.filter(
                environment=environment,
                state__in=ACTIVE_DEPLOYMENT_STATES,
                scheduled_start__lt=batch[-1].end,
                scheduled_end__gt=batch[0].start,
            )
            .exclude(rfc=rfc)
            .only("scheduled_start", "scheduled_end")
        ]
        for slot in batch:
            if not any(lo < slot.end and hi > slot.start for lo, hi in taken):
                found.append(slot)
                if len(found) == count:
                    return found
        cursor = batch[-1].start + timedelta(minutes=1)
    return found


def may_schedule(user, site: Site) -> bool:
    return access.has_any_role(user, SCHEDULERS, site)


def may_roll_back(user, deployment: Deployment) -> bool:
    return deployment.state in ROLLBACK_REQUESTABLE and may_schedule(user, deployment.environment.site)


def may_cancel(user, deployment: Deployment) -> bool:
    return (
        deployment.state == DeploymentState.SCHEDULED
        and not deployment.lease_owner
        and access.can(user, "deploy", deployment.environment)
    )


def may_deploy_now(user, environment: Environment) -> bool:
    return environment.tier != Tier.PROD and access.can(user, "deploy", environment)


def _require_scheduler(user, rfc: Rfc, site: Site) -> None:
    if site.pk not in {i.site_id for i in rfc.impacts.all()}:
        raise ValidationError(
            {"site": gettext("%(site)s is not a target of %(rfc)s.") % {"site": site.code, "rfc": rfc.number}}
        )
    if not may_schedule(user, site):
        raise PermissionDenied(
            gettext("Only a release manager or an admin of %(site)s schedules its PROD.")
            % {"site": site.code}
        )


def book(
    user,
    rfc: Rfc,
    site: Site,
    start: datetime,
    duration: int,
    *,
    handover_override: bool = False,
    acknowledge_conflicts: bool = False,
) -> Deployment:
    """Book the RFC's PROD deployment at `site` (the workflow schedules the RFC once every target site
    is booked: `workflow.services.schedule`). Another RFC touching the same line, module or interface
    at the site in an overlapping slot is refused until the release manager acknowledges it."""
    _require_scheduler(user, rfc, site)
    if handover_override:
        if not rfc.emergency:
            raise ValidationError(
                {"handover_override": gettext("Only an emergency change may start in a shift handover.")}
            )
        if not access.has_role(user, Role.PLANT_DIRECTOR, site):
            raise PermissionDenied(gettext("Only the Plant Director overrides a shift handover."))
    if start <= clock.now():
        raise ValidationError({"start": gettext("The start is in the past.")})
    with gates.noting_refusals(rfc, "schedule"), transaction.atomic():
        locked = Rfc.objects.select_for_update().get(pk=rfc.pk)
        if locked.state != RfcState.APPROVED:
            raise StateConflict(
                gettext("%(rfc)s is %(state)s; only an approved RFC is scheduled.")
                % {"rfc": locked.number, "state": locked.get_state_display().lower()}
            )
        failed = gates.failing(locked, "schedule")
        if failed:
            raise RuleViolation(
                gettext("Not ready to schedule: %(gates)s")
                % {"gates": "; ".join(f"{gettext(g.name)} — {g.reason}" for g in failed)},
                rule=failed[0].name,
                failed=[g.as_dict() for g in failed],
            )
        # Lock the environment: two release managers booking the same slot queue up here.
        environment = Environment.objects.select_for_update().select_related("site").get(pk=prod_of(site).pk)
        if Deployment.objects.filter(
            rfc=locked, environment=environment, state__in=ACTIVE_DEPLOYMENT_STATES
        ).exists():
            raise StateConflict(
                gettext("%(rfc)s is already scheduled at %(site)s.")
                % {"rfc": locked.number, "site": site.code}
            )
        result = plan(locked, site, start, duration, handover_override=handover_override)
        busy = promotion.overlap_refusal(locked, environment, result.decision.start, result.decision.end)
        if busy:
            raise RuleViolation(busy, rule=promotion.RULE)
        if not result.allowed:
            tz = site.zone
            raise RuleViolation(
                gettext("%(start)s is not allowed at %(site)s: %(reasons)s")
                % {
                    "start": f"{start.astimezone(tz):%a %d %b %Y %H:%M %Z}",
                    "site": site.code,
                    "reasons": "; ".join(result.reasons),
                },
                rule=WINDOW_GATE,
                failed=[{"name": WINDOW_GATE, "passed": False, "reason": r} for r in result.reasons],
            )
        clashes = conflicts.touching(locked, site, result.decision.start, result.decision.end)
        if clashes and not acknowledge_conflicts:
            raise RuleViolation(
                gettext(
                    "Another change touches the same items in this slot; acknowledge it to book anyway: %(changes)s"
                )
                % {"changes": "; ".join(c.describe() for c in clashes)},
                rule=conflicts.RULE,
                failed=[{"name": conflicts.RULE, "passed": False, "reason": c.describe()} for c in clashes],
            )
        deployment = Deployment.objects.create(
            rfc=locked,
            environment=environment,
            scheduled_start=result.decision.start,
            scheduled_end=result.decision.end,
            duration_minutes=duration,
            emergency=locked.emergency,
            handover_override=handover_override,
            scheduled_by=user,
            artifact_sha256=locked.release.artifact_sha256,
        )
        dispatcher.wake()  # the dispatcher re-reads its next due time when this commits
        local = deployment.scheduled_start.astimezone(site.zone)
        record(
            "releases.deployment.scheduled",
            deployment,
            actor=user,
            after={
                "environment": str(environment),
                "start": deployment.scheduled_start.isoformat(),
                "local_start": f"{local:%Y-%m-%d %H:%M %Z}",
                "end": deployment.scheduled_end.isoformat(),
                "duration_minutes": duration,
                "emergency": locked.emergency,
                "handover_override": handover_override,
            },
        )
        if clashes:
            record(
                "releases.deployment.conflict_acknowledged",
                deployment,
                actor=user,
                reason="Booked beside changes that touch the same items.",
                after={"conflicts": [c.as_dict() for c in clashes]},
            )
    return deployment


def bookings(rfc: Rfc) -> dict[int, Deployment]:
    """Site id → the RFC's PROD deployment that holds a slot there (booked or in progress)."""
    return {
        d.environment.site_id: d
        for d in Deployment.objects.filter(
            rfc=rfc, environment__tier=Tier.PROD, state__in=ACTIVE_DEPLOYMENT_STATES
        ).select_related("environment", "environment__site")
    }


def booked_sites(rfc: Rfc) -> set[int]:
    """The sites where the RFC holds a PROD slot (or a deployment in progress)."""
    return set(bookings(rfc))


def all_sites_booked(rfc: Rfc) -> bool:
    return booked_sites(rfc) >= {impact.site_id for impact in rfc.impacts.all()}


def cancel_deployments(rfc: Rfc, actor, reason: str) -> int:
    """Unscheduling or cancelling the RFC frees its booked slots (inside the transition)."""
    count = 0
    for deployment in Deployment.objects.select_for_update().filter(rfc=rfc, state=DeploymentState.SCHEDULED):

        def audit(deployment=deployment) -> None:
            record(
                "releases.deployment.cancelled",
                deployment,
                actor=actor,
                reason=reason,
                after={"environment": str(deployment.environment_id)},
            )

        move(deployment, DeploymentState.CANCELLED, actor=actor, audit=audit, cancel_reason=reason[:300])
        count += 1
    return count


# --- The gate: checked again before dispatch and before the worker touches PROD (W5) --------------
@gates.gate(WINDOW_GATE, applies_from=frozenset({"deploy"}))
def window_gate(rfc) -> gates.Gate:
    booked = bookings(rfc)
    missing = [i.site.code for i in rfc.impacts.all() if i.site_id not in booked]
    if missing:
        return gates.Gate(
            WINDOW_GATE, False, gettext("Not scheduled at %(sites)s.") % {"sites": ", ".join(missing)}
        )
    problems, fine = [], []
    for deployment in booked.values():
        site = deployment.environment.site
        result = plan(
            rfc,
            site,
            deployment.scheduled_start,
            deployment.duration_minutes,
            handover_override=deployment.handover_override,
        )
        local = deployment.scheduled_start.astimezone(site.zone)
        if result.allowed:
            fine.append(f"{site.code} {local:%a %d %b %H:%M %Z}")
        else:
            problems.append(f"{site.code} {local:%a %d %b %H:%M %Z}: {'; '.join(result.reasons)}")
    if problems:
        return gates.Gate(
            WINDOW_GATE,
            False,
            gettext("No longer allowed — %(problems)s") % {"problems": " | ".join(problems)},
        )
    return gates.Gate(
        WINDOW_GATE, True, gettext("Inside an allowed window: %(slots)s.") % {"slots": ", ".join(fine)}
    )


# --- DEV and UAT deployments, manual rollback, cancel -----------------------------------
def deploy_now(user, rfc: Rfc, environment: Environment, duration: int = 30) -> Deployment:
    """Promote the RFC's artifact to DEV or UAT now (no calendar there unless the environment enforces one)."""
    if environment.tier == Tier.PROD:
        raise ValidationError(
            {"environment": gettext("PROD is scheduled into its window, not deployed at once.")}
        )
    if environment.site_id not in {i.site_id for i in rfc.impacts.all()}:
        raise ValidationError(
            {
                "environment": gettext("%(site)s is not a target of %(rfc)s.")
                % {"site": environment.site.code, "rfc": rfc.number}
            }
        )
    access.require(user, "deploy", environment)
    start = clock.now()
    decision = calendar.check(rules_for(environment), start, duration)
    if not decision.allowed:
        raise RuleViolation(
            gettext("%(environment)s does not take deployments now: %(reasons)s")
            % {"environment": environment, "reasons": "; ".join(decision.reasons)},
            rule=WINDOW_GATE,
        )
    with transaction.atomic():
        locked = Rfc.objects.select_for_update().select_related("release").get(pk=rfc.pk)  # the RFC first
        Environment.objects.select_for_update().get(pk=environment.pk)
        busy = _conflicts(environment, start, decision.end)
        if busy:
            raise StateConflict(
                gettext("%(environment)s is busy with %(rfc)s's deployment.")
                % {"environment": environment, "rfc": busy[0].rfc.number}
            )
        refused = promotion.refusal(locked, environment, start, decision.end)
        if refused:
            raise RuleViolation(refused, rule=promotion.RULE)
        deployment = Deployment.objects.create(
            rfc=locked,
            environment=environment,
            scheduled_start=start,
            scheduled_end=decision.end,
            duration_minutes=duration,
            scheduled_by=user,
            artifact_sha256=locked.release.artifact_sha256,
        )
        record(
            "releases.deployment.scheduled",
            deployment,
            actor=user,
            after={"environment": str(environment), "start": start.isoformat(), "immediate": True},
        )
        dispatcher.wake()
        jobs.nudge(DISPATCH_TASK)
    return deployment


def request_rollback(user, deployment: Deployment, reason: str) -> Deployment:
    """A release manager stops a running deployment: the worker rolls back at the next step."""
    if not reason.strip():
        raise ValidationError({"reason": gettext("Say why you roll back.")})
    if not may_schedule(user, deployment.environment.site):
        raise PermissionDenied(gettext("Only a release manager or an admin rolls a deployment back."))
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.state not in ROLLBACK_REQUESTABLE:
            raise StateConflict(
                gettext("The deployment is %(state)s; only a running one is rolled back.")
                % {"state": locked.get_state_display().lower()}
            )
        locked.rollback_requested_by = user
        locked.outcome = f"Rollback requested by {user.get_username()}: {reason.strip()}"
        locked.next_action_at = clock.now()
        locked.save(update_fields=["rollback_requested_by", "outcome", "next_action_at"])
        record("releases.deployment.rollback_requested", locked, actor=user, reason=reason.strip())
        dispatcher.wake()
        jobs.nudge(DISPATCH_TASK)
    return locked


def cancel_deployment(user, deployment: Deployment, reason: str) -> Deployment:
    """Cancel before it starts. A PROD cancel unschedules the RFC (its other bookings too)."""
    if not reason.strip():
        raise ValidationError({"reason": gettext("Say why you cancel.")})
    if not access.can(user, "deploy", deployment.environment):
        raise PermissionDenied(gettext("You may not cancel deployments to this environment."))
    with transaction.atomic():
        Rfc.objects.select_for_update().filter(pk=deployment.rfc_id).first()  # lock order: the RFC first
        locked = Deployment.objects.select_for_update().select_related("rfc").get(pk=deployment.pk)
        if locked.state != DeploymentState.SCHEDULED or locked.lease_owner:
            raise StateConflict(gettext("Only a deployment that has not started is cancelled."))
        # A PROD cancel of a scheduled RFC unschedules it: the workflow follows the move (and frees
        # the RFC's other bookings); see workflow/transitions.py.
        move(
            locked,
            DeploymentState.CANCELLED,
            actor=user,
            audit=lambda: record("releases.deployment.cancelled", locked, actor=user, reason=reason.strip()),
            cancel_reason=reason.strip()[:300],
        )
    locked.refresh_from_db()
    return locked
