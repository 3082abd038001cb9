"""Release rings (E10): several sites take one release in ordered rings, low-risk sites first.

A release's rings come from its saved rollout plan (`releases.models.RolloutPlan`, edited on the
rollout page), or else from the risk tiers of the sites its RFCs target (`Site.rollout_ring`: pilot,
low risk, standard), each ring soaking `ROLLOUT_SOAK_MINUTES`.

Ring N+1 may be scheduled (and started) only when every site of every earlier ring runs the same
artifact in PROD — its newest PROD deployment of that artifact succeeded — the post-implementation
review of that deployment is complete and reports no failure, and the ring's soak time has passed
since its last site finished. A rollback or a failure in ring N halts the rollout: the "Release
rings" gate refuses every site still to take the release (the rest of ring N and the later rings;
only the failed site may try again), and `halt()` (run after the failing move commits) cancels
their bookings and tells the people concerned. The gate is the guarantee; the cancelling is the
courtesy.

An RFC covers the sites of one ring: one that spans two rings could never pass its own earlier ring,
so the gate says to split it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext, gettext_noop, ngettext

from audit.services import record
from core import clock
from deployments.models import Deployment, DeploymentState
from deployments.scheduling import may_schedule
from deployments.states import FAILED_ENDS, IN_PROGRESS, move
from environments.models import ProductVersion, RolloutRing, Site, Tier
from releases import gates
from releases.models import Impact, Release, Rfc, Ring, RolloutPlan
from releases.states import RfcState
from workflow.models import CloseCode, Review

RULE = gettext_noop("Release rings")  # the gate's name: a key, translated where shown
MAX_RINGS = 4
MAX_SOAK_MINUTES = 90 * 24 * 60
REVIEW_FAILURES = frozenset({CloseCode.ROLLED_BACK, CloseCode.FAILED})
# RFCs that no longer carry a release anywhere do not pull their sites into its rollout.
GONE = frozenset({RfcState.REJECTED, RfcState.CANCELLED})


@dataclass
class SiteRollout:
    site: Site
    deployment: Deployment | None = (
        None  # the newest PROD deployment of the artifact (not cancelled or missed)
    )
    review: Review | None = None
    rfc: Rfc | None = None  # the RFC that carries the release to this site
    version: str = ""  # what the site's PROD runs of the product now

    @property
    def state(self) -> str:
        d = self.deployment
        if d is None:
            return "waiting"
        if d.state in IN_PROGRESS:
            return "running"
        if d.state in FAILED_ENDS:
            return "failed" if d.state != DeploymentState.ROLLED_BACK else "rolled_back"
        return d.state  # scheduled, succeeded

    @property
    def label(self) -> str:
        return {
            "waiting": gettext("Not scheduled"),
            "scheduled": gettext("Scheduled"),
            "running": gettext("Deploying"),
            "succeeded": gettext("Succeeded"),
            "rolled_back": gettext("Rolled back"),
            "failed": gettext("Failed"),
        }[self.state]

    def problem(self, release: Release) -> str | None:
        """Why this site does not yet let the next ring go, or None."""
        code = self.site.code
        if self.state != "succeeded":
            return gettext("%(site)s has not run %(release)s in PROD successfully yet (%(state)s).") % {
                "site": code,
                "release": release,
                "state": self.label.lower(),
            }
        if self.review is None or not self.review.done:
            number = self.deployment.rfc.number
            return gettext("%(site)s: the post-implementation review of %(rfc)s is not complete.") % {
                "site": code,
                "rfc": number,
            }
        if self.review.close_code in REVIEW_FAILURES:
            return gettext("%(site)s: the review of %(rfc)s reports %(code)s.") % {
                "site": code,
                "rfc": self.review.rfc.number,
                "code": self.review.get_close_code_display().lower(),
            }
        return None


@dataclass
class RingRollout:
    position: int
    soak_minutes: int
    sites: list[SiteRollout] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the next ring may not start
    soaked_at: datetime | None = None  # when the soak ends, once every site succeeded
    next_start: datetime | None = None  # the earliest start allowed for this ring (None: not yet known)
    blocked: str = ""  # why this ring may not start (earlier rings)

    @property
    def soak_text(self) -> str:
        return _duration(self.soak_minutes) if self.soak_minutes else gettext("no soak time")

    @property
    def failed(self) -> list[SiteRollout]:
        return [s for s in self.sites if s.state in ("rolled_back", "failed")]


@dataclass
class Rollout:
    release: Release
    planned: bool  # a saved plan (else the sites' risk tiers)
    rings: list[RingRollout]
    halted: str = ""  # why the rollout is halted ("" when it is not)
    plan: RolloutPlan | None = None
    halted_ring: int = -1  # the first ring with a rolled-back or failed site
    failed_sites: set[int] = field(default_factory=set)

    def ring_of(self, site_id: int) -> RingRollout | None:
        return next((r for r in self.rings if any(s.site.pk == site_id for s in r.sites)), None)

    def refusal(self, site_ids, now: datetime) -> str | None:
        """Why an RFC for these sites may not be scheduled or started now (None: it may)."""
        rings = {site_id: self.ring_of(site_id) for site_id in site_ids}
        missing = [site_id for site_id, ring in rings.items() if ring is None]
        if missing:
            codes = ", ".join(sorted(Site.objects.filter(pk__in=missing).values_list("code", flat=True)))
            return gettext(
                "%(sites)s is not in the rollout plan of %(release)s: a release manager adds it to a ring "
                "on the release's rollout page."
            ) % {"sites": codes, "release": self.release}
        positions = sorted({ring.position for ring in rings.values()})
        if len(positions) > 1:
            return gettext(
                "The RFC targets sites in rings %(rings)s of the rollout of %(release)s: "
                "file one RFC per ring, so that each ring waits for the one before it."
            ) % {"rings": ", ".join(map(str, positions)), "release": self.release}
        ring = rings[next(iter(rings))]
        retry = all(site_id in self.failed_sites for site_id in site_ids)
        if self.halted and ring.position >= self.halted_ring and not retry:
            return self.halted  # the failed site may try again; no other site goes on
        if ring.blocked:
            return ring.blocked
        if ring.next_start is not None and now < ring.next_start:
            before = self.rings[ring.position - 1]
            return gettext(
                "Ring %(before)s soaks until %(until)s UTC (%(soak)s after its last site finished): "
                "ring %(ring)s starts after that."
            ) % {
                "before": before.position,
                "until": f"{ring.next_start:%Y-%m-%d %H:%M}",
                "soak": _duration(before.soak_minutes),
                "ring": ring.position,
            }
        return None


def _duration(minutes: int) -> str:
    if minutes % (24 * 60) == 0 and minutes:
        days = minutes // (24 * 60)
        return ngettext("%(count)s day", "%(count)s days", days) % {"count": days}
    if minutes % 60 == 0 and minutes:
        hours = minutes // 60
        return ngettext("%(count)s hour", "%(count)s hours", hours) % {"count": hours}
    return ngettext("%(count)s minute", "%(count)s minutes", minutes) % {"count": minutes}


def _planned_rings(release: Release) -> tuple[RolloutPlan | None, list[tuple[int, list[Site]]]]:
    """(the saved plan or None, [(soak minutes, sites)] in ring order; empty rings dropped)."""
    plan = RolloutPlan.objects.filter(release=release).select_related("updated_by").first()
    if plan is not None:
        rings = Ring.objects.filter(plan=plan).prefetch_related("sites").order_by("position")
        return plan, [
            (r.soak_minutes, sorted(r.sites.all(), key=lambda s: s.code)) for r in rings if r.sites.all()
        ]
    targeted = (
        Site.objects.filter(rfcs__release=release).exclude(rfcs__state__in=GONE).distinct().order_by("code")
    )
    tiers: dict[int, list[Site]] = {}
    for site in targeted:
        tiers.setdefault(site.rollout_ring, []).append(site)
    soak = settings.ROLLOUT_SOAK_MINUTES
    return None, [(soak, tiers[tier]) for tier in sorted(tiers)]


def status(release: Release, now: datetime | None = None) -> Rollout:
    """The rollout of `release`: its rings, each site's state and version, and what may start when.
    A constant number of queries, whatever the number of sites and deployments."""
    now = now or clock.now()
    plan, planned = _planned_rings(release)
    site_ids = [site.pk for _, sites in planned for site in sites]
    newest: dict[int, Deployment] = {}
    if release.artifact_sha256 and site_ids:
        found = (
            Deployment.objects.filter(
                environment__tier=Tier.PROD,
                environment__site_id__in=site_ids,
                artifact_sha256=release.artifact_sha256,
            )
            .exclude(state__in=[DeploymentState.CANCELLED, DeploymentState.MISSED])
            .select_related("rfc", "environment")
            .order_by("-pk")
        )
        for d in found:
            newest.setdefault(d.environment.site_id, d)
    reviews: dict[int, list[Review]] = {}
    rfc_ids = {d.rfc_id for d in newest.values() if d.state == DeploymentState.SUCCEEDED}
    for review in (
        Review.objects.filter(rfc_id__in=rfc_ids).select_related("rfc").order_by("last_deployment_id")
    ):
        reviews.setdefault(review.rfc_id, []).append(review)
    versions = dict(
        ProductVersion.objects.filter(
            environment__site_id__in=site_ids, environment__tier=Tier.PROD, product=release.product
        ).values_list("environment__site_id", "version")
    )
    carriers: dict[int, Rfc] = {}
    for impact in (
        Impact.objects.filter(rfc__release=release, site_id__in=site_ids)
        .exclude(rfc__state__in=GONE)
        .select_related("rfc")
        .order_by("-rfc__created_at")
    ):
        carriers.setdefault(impact.site_id, impact.rfc)

    rings: list[RingRollout] = []
    for position, (soak, sites) in enumerate(planned):
        ring = RingRollout(position, soak)
        for site in sites:
            d = newest.get(site.pk)
            review = None
            if d is not None and d.state == DeploymentState.SUCCEEDED:
                review = next((r for r in reviews.get(d.rfc_id, []) if r.last_deployment_id >= d.pk), None)
            entry = SiteRollout(
                site, d, review, d.rfc if d is not None else carriers.get(site.pk), versions.get(site.pk, "")
            )
            ring.sites.append(entry)
            problem = entry.problem(release)
            if problem:
                ring.problems.append(problem)
        if not ring.problems:
            last = max(s.deployment.finished_at or s.deployment.scheduled_end for s in ring.sites)
            ring.soaked_at = last + timedelta(minutes=soak)
        rings.append(ring)

    rollout = Rollout(release, plan is not None, rings, plan=plan)
    for ring in rings:
        rollout.failed_sites.update(s.site.pk for s in ring.failed)
        if ring.failed and not rollout.halted:
            rollout.halted_ring = ring.position
            worst = ring.failed[0]
            facts = {
                "release": release,
                "state": worst.label.lower(),
                "site": worst.site.code,
                "rfc": worst.deployment.rfc.number if worst.deployment else "",
                "ring": ring.position,
            }
            rollout.halted = (
                gettext(
                    "%(release)s %(state)s at %(site)s (%(rfc)s) in ring %(ring)s: the rollout is halted; "
                    "no other site may start until that site succeeds again."
                )
                if worst.deployment
                else gettext(
                    "%(release)s %(state)s at %(site)s in ring %(ring)s: the rollout is halted; "
                    "no other site may start until that site succeeds again."
                )
            ) % facts
    # When may each ring start? The first at once; each later one once every earlier ring passed and soaked.
    start: datetime | None = None
    blocked = ""
    for ring in rings:
        ring.next_start = start if not blocked else None
        ring.blocked = blocked
        if blocked:
            continue
        if ring.failed:
            blocked = rollout.halted
        elif ring.problems:
            blocked = gettext("Ring %(ring)s is not done: %(problems)s") % {
                "ring": ring.position,
                "problems": " ".join(ring.problems),
            }
        else:
            start = max(start, ring.soaked_at) if start else ring.soaked_at
    return rollout


@gates.gate(RULE, applies_from=frozenset({"schedule", "deploy"}))
def ring_gate(rfc) -> gates.Gate:
    rollout = status(rfc.release)
    site_ids = [impact.site_id for impact in rfc.impacts.all()]
    if not site_ids:
        return gates.Gate(RULE, False, gettext("The RFC names no site."))
    refused = rollout.refusal(site_ids, clock.now())
    if refused:
        return gates.Gate(RULE, False, refused)
    ring = rollout.ring_of(site_ids[0])
    if len(rollout.rings) == 1:
        return gates.Gate(
            RULE,
            True,
            gettext("%(release)s has one ring: no earlier sites to wait for.") % {"release": rfc.release},
        )
    if ring.position == 0:
        return gates.Gate(
            RULE,
            True,
            gettext("Ring 0 of %(rings)s: the first sites to take %(release)s.")
            % {"rings": len(rollout.rings), "release": rfc.release},
        )
    before = rollout.rings[ring.position - 1]
    done = ", ".join(s.site.code for s in before.sites)
    return gates.Gate(
        RULE,
        True,
        gettext("Ring %(ring)s: ring %(before)s (%(sites)s) succeeded, was reviewed and soaked for %(soak)s.")
        % {
            "ring": ring.position,
            "before": before.position,
            "sites": done,
            "soak": _duration(before.soak_minutes),
        },
    )


# --- Halting ----------------------------------------------------------------------------------
def halt(deployment_id: int, hold: Callable[[Rfc, str], object]) -> list[Rfc]:
    """Cancel the PROD bookings of the failed deployment's artifact at every site still to take it
    (the rest of its ring, the later rings) and tell the people concerned. `hold(rfc, reason)` takes
    a scheduled RFC's "hold" transition (workflow.services, which calls this after the failing move
    commits)."""
    from notify import events

    failed = Deployment.objects.select_related("rfc__release", "environment__site").get(pk=deployment_id)
    if failed.state not in FAILED_ENDS or not failed.artifact_sha256:
        return []
    release = failed.rfc.release
    if release.artifact_sha256 != failed.artifact_sha256:
        return []  # the RFC carries another release now
    rollout = status(release)
    ring = rollout.ring_of(failed.environment.site_id)
    if ring is None:
        return []
    # Every site still to take it: the rest of the failed site's ring and all later rings.
    later = [
        s.site.pk
        for r in rollout.rings[ring.position :]
        for s in r.sites
        if s.site.pk != failed.environment.site_id
    ]
    victims = (
        Deployment.objects.filter(
            state=DeploymentState.SCHEDULED,
            environment__tier=Tier.PROD,
            environment__site_id__in=later,
            artifact_sha256=failed.artifact_sha256,
        )
        .values_list("rfc_id", flat=True)
        .distinct()
    )
    with translation.override(None):  # the reason is a record (audit, cancelled bookings): in English
        reason = (
            f"Rollout of {release} halted: {failed.get_state_display().lower()} at {failed.environment.site.code} "
            f"({failed.rfc.number}) in ring {ring.position}."
        )
    told = []
    for rfc_id in sorted(set(victims)):
        with transaction.atomic():
            rfc = Rfc.objects.select_for_update().get(pk=rfc_id)  # the RFC first
            if rfc.state == RfcState.SCHEDULED:
                # Frees every booking of the RFC (one ring's sites) and tells people.
                hold(rfc, reason)
                told.append(rfc)
                continue
            cancelled = 0  # an RFC booked at some of its sites only: free those
            for d in Deployment.objects.select_for_update().filter(
                rfc=rfc,
                state=DeploymentState.SCHEDULED,
                environment__tier=Tier.PROD,
                environment__site_id__in=later,
            ):
                if d.lease_owner:
                    continue  # a worker holds it: the gate refuses it at the start
                move(
                    d,
                    DeploymentState.CANCELLED,
                    actor=None,
                    audit=partial(
                        record, "releases.deployment.cancelled", d, actor_name="portal", reason=reason
                    ),
                    cancel_reason=reason[:300],
                )
                cancelled += 1
            if cancelled:
                events.emit("rollout.halted", rfc, data={"reason": reason})
                told.append(rfc)
    if told:
        record(
            "releases.rollout.halted",
            release,
            actor_name="portal",
            reason=reason,
            after={"cancelled": [r.number for r in told]},
        )
    return told


# --- Planning ----------------------------------------------------------------------------------
def save_plan(user, release: Release, rings: list[tuple[int, list[Site]]]) -> RolloutPlan:
    """Save the release's rings [(soak minutes, sites)] in order; empty rings are dropped."""
    rings = [(soak, sites) for soak, sites in rings if sites]
    if not rings:
        raise ValidationError({"rings": gettext("Put at least one site in a ring.")})
    if len(rings) > MAX_RINGS:
        raise ValidationError({"rings": gettext("A rollout has at most %(max)s rings.") % {"max": MAX_RINGS}})
    seen: set[int] = set()
    for soak, sites in rings:
        if not 0 <= soak <= MAX_SOAK_MINUTES:
            raise ValidationError(
                {
                    "soak": gettext("A soak time is between 0 and %(max)s minutes (90 days).")
                    % {"max": MAX_SOAK_MINUTES}
                }
            )
        for site in sites:
            if site.pk in seen:
                raise ValidationError({"rings": gettext("%(site)s is in two rings.") % {"site": site.code}})
            seen.add(site.pk)
            if not may_schedule(user, site):
                raise PermissionDenied(
                    gettext("Only a release manager or an admin of %(site)s plans its rollout.")
                    % {"site": site.code}
                )
    with transaction.atomic():
        Release.objects.select_for_update().get(pk=release.pk)
        before = describe(status(release))
        plan, _ = RolloutPlan.objects.update_or_create(
            release=release, defaults={"updated_by": user, "updated_at": clock.now()}
        )
        Ring.objects.filter(plan=plan).delete()
        for position, (soak, sites) in enumerate(rings):
            ring = Ring.objects.create(plan=plan, position=position, soak_minutes=soak)
            ring.sites.set(sites)
        record(
            "releases.rollout.planned", release, actor=user, before=before, after=describe(status(release))
        )
    return plan


def reset_plan(user, release: Release) -> None:
    """Back to the sites' risk tiers."""
    plan = RolloutPlan.objects.filter(release=release).first()
    if plan is None:
        return
    with transaction.atomic():
        for ring in Ring.objects.filter(plan=plan).prefetch_related("sites"):
            for site in ring.sites.all():
                if not may_schedule(user, site):
                    raise PermissionDenied(
                        gettext("Only a release manager or an admin of %(site)s plans its rollout.")
                        % {"site": site.code}
                    )
        before = describe(status(release))
        plan.delete()
        record(
            "releases.rollout.planned", release, actor=user, before=before, after=describe(status(release))
        )


def describe(rollout: Rollout) -> dict:
    return {
        "source": "plan" if rollout.planned else "risk tiers",
        "rings": [
            {"ring": r.position, "soak_minutes": r.soak_minutes, "sites": [s.site.code for s in r.sites]}
            for r in rollout.rings
        ],
    }


def tier_label(value: int) -> str:
    return RolloutRing(value).label
