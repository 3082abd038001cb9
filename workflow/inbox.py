"""What waits for a person, by role (E9): the home page's lists, as one service the page renders.

Each list is bounded (ten rows) and costs a fixed number of queries whatever the data holds
(tests/changecontrol/test_query_counts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, OuterRef, Prefetch, Q

from approvals.services import approvals_for
from core import clock
from core.roles import Role
from deployments.models import Deployment
from deployments.states import ACTIVE as ACTIVE_DEPLOYMENT_STATES
from deployments.states import FAILED_ENDS
from environments import access
from environments.models import TIER_ORDER, Environment
from releases.models import Impact, UatSignoff
from releases.services import FILERS, rfc_visible, visible_rfcs
from releases.states import OPEN_STATES, RfcState
from workflow.models import Review
from workflow.reviews import ENDED

ROWS = 10
FAILURE_DAYS = 14
# The columns the lists show (templates/home.html): reading no others keeps each list's query and its
# rows cheap. A column shown later must be named here, or each row costs a query of its own (the
# home pages' counts in tests/changecontrol/query_counts.json say so).
RFC_SHOWN = ("uuid", "number", "title", "state")
DEPLOYMENT_SHOWN = (
    "uuid",
    "state",
    "emergency",
    "scheduled_start",
    "finished_at",
    "rfc__uuid",
    "rfc__number",
    "environment__tier",
    "environment__site__code",
    "environment__site__timezone",
)


@dataclass
class Inbox:
    environments: list = field(default_factory=list)
    mine: list = field(default_factory=list)  # the user's own RFCs still open
    to_sign_off: list = field(
        default_factory=list
    )  # drafts at the user's key-user sites with no live sign-off
    to_approve: list = field(default_factory=list)  # approvals the user may sign now
    to_schedule: list = field(default_factory=list)  # approved RFCs, for release managers
    ended: list = field(default_factory=list)  # ended RFCs to review, re-plan or close
    deployments: list = field(default_factory=list)  # (deployment, local start) booked or running
    # (deployment, local end) that failed or rolled back in the last FAILURE_DAYS days
    failures: list = field(default_factory=list)
    is_key_user: bool = False
    is_approver: bool = False
    may_file: bool = False


def inbox(user) -> Inbox:
    sites = list(access.visible_sites(user))
    result = Inbox(
        environments=sorted(
            Environment.objects.filter(site__in=sites).select_related("site").prefetch_related("products"),
            key=lambda env: (env.site.code, TIER_ORDER[env.tier]),
        ),
        may_file=access.has_any_role(user, FILERS),
    )
    rfcs = visible_rfcs(user)
    # Every list shows an RFC's number, title and state; those to sign off or to schedule its sites
    # (and the release) besides: only they read the impacts.
    shown = rfcs.only(*RFC_SHOWN)
    impacts = Prefetch("impacts", queryset=Impact.objects.select_related("site"))
    result.mine = list(shown.filter(author=user, state__in=OPEN_STATES).order_by("-updated_at")[:ROWS])
    # Ended changes wait for their review and a next step (re-plan or close): the author's own, and
    # those at the sites where the user is a release manager.
    rm_sites = [s for s in sites if access.has_any_role(user, [Role.RELEASE_MANAGER, Role.ADMIN], s)]
    if not rm_sites:
        concerned = Q(author=user)
    elif len(rm_sites) == len(sites):
        # A release manager wherever they see: every visible ended RFC (the visibility rule already
        # asks for an impact at these sites). Said once, the database reads the newest and stops.
        concerned = Q()
    else:
        concerned = Q(author=user) | Exists(Impact.objects.filter(rfc=OuterRef("pk"), site__in=rm_sites))
    result.ended = list(
        shown.filter(concerned, state__in=ENDED)
        .annotate(
            review_open=Exists(Review.objects.filter(rfc=OuterRef("pk"), completed_at__isnull=True)),
            reviewed=Exists(Review.objects.filter(rfc=OuterRef("pk"))),
        )
        .order_by("-updated_at")[:ROWS]
    )
    key_user_sites = [site for site in sites if access.has_role(user, Role.KEY_USER, site)]
    result.is_key_user = bool(key_user_sites)
    if key_user_sites:
        live_signoff = UatSignoff.objects.filter(
            rfc=OuterRef("rfc"),
            site=OuterRef("site"),
            voided_at__isnull=True,
            release=OuterRef("rfc__release"),
        )
        waiting = (
            Impact.objects.filter(site__in=key_user_sites, rfc__state=RfcState.DRAFT)
            .exclude(rfc__author=user)
            .exclude(Exists(live_signoff))
            .values("rfc")
        )
        result.to_sign_off = list(
            rfcs.select_related("release")
            .prefetch_related(impacts)
            .filter(pk__in=waiting)
            .order_by("-created_at")[:ROWS]
        )
    result.is_approver = bool(access.all_roles(user) & access.APPROVER_ROLES)
    if result.is_approver:
        # Only what the list shows (the RFC and the site): each further join costs the planner more
        # than the ten rows cost to read.
        result.to_approve = list(
            approvals_for(user).select_related(None).select_related("rfc", "site").order_by("pk")[:ROWS]
        )
    if access.has_any_role(user, [Role.RELEASE_MANAGER, Role.ADMIN]):
        result.to_schedule = list(
            shown.prefetch_related(impacts).filter(state=RfcState.APPROVED).order_by("-updated_at")[:ROWS]
        )
        result.deployments = [
            (d, f"{d.scheduled_start.astimezone(d.environment.site.zone):%a %-d %b %H:%M %Z}")
            for d in Deployment.objects.filter(rfc_visible(user, "rfc"), state__in=ACTIVE_DEPLOYMENT_STATES)
            .select_related("rfc", "environment", "environment__site")
            .only(*DEPLOYMENT_SHOWN)
            .order_by("scheduled_start")[:ROWS]
        ]
        result.failures = [
            (d, f"{d.finished_at.astimezone(d.environment.site.zone):%a %-d %b %H:%M %Z}")
            for d in Deployment.objects.filter(
                rfc_visible(user, "rfc"),
                state__in=FAILED_ENDS,
                finished_at__gte=clock.now() - timedelta(days=FAILURE_DAYS),
            )
            .select_related("rfc", "environment", "environment__site")
            .only(*DEPLOYMENT_SHOWN)
            .order_by("-finished_at", "-pk")[:ROWS]
        ]
    return result
