"""What the home page answers first for those who oversee change (issue 17 item 2).

- An auditor (or admin): is the audit chain intact (the last verification, the chain head, the last
  published head), which gates were waived, which changes were emergencies, who holds Admin and how
  grants changed, and how many sign-ins failed — each over the last DAYS days, each linking on.
- An IT or plant manager: the dashboard's key figures for the sites where they hold that role, as
  computed at most FIGURES_FOR ago (kept in Django's cache per set of sites and period; the page says
  as of when, and the dashboard it links to computes them afresh).

A fixed number of queries whatever the trail holds (tests/changecontrol/test_home_roles.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from audit.models import AuditEvent, ChainHead
from audit.trail import published_heads
from core import clock
from core.roles import Role
from environments import access
from releases.models import GateWaiver
from releases.services import rfc_visible, visible_rfcs
from reports import figures
from reports.figures import figure_link
from workflow import metrics

DAYS = metrics.DEFAULT_DAYS
ROWS = 10
ROLE_CHANGES = (
    "accounts.object_permission.granted",
    "accounts.object_permission.revoked",
    "accounts.directory.role_granted",
    "accounts.directory.role_revoked",
    "accounts.grant.expired",
)
MANAGER_ROLES = (Role.IT_MANAGER, Role.OPERATIONS_MANAGER, Role.PLANT_DIRECTOR, Role.CIO)
# How old the managers' home figures may be: a month's figures hardly move in minutes, and computing
# them makes the page cost 40 ms instead of 23 (bench/pages_bench.py, 20,000 RFCs).
FIGURES_FOR = timedelta(minutes=5)


@dataclass
class Chain:
    state: str  # "intact", "broken" or "unverified"
    verified_at: object = None
    verified_count: int = 0
    problem: str = ""
    head_seq: int = 0
    head_hash: str = ""
    published: dict | None = None

    @property
    def since_verified(self) -> int:
        return max(0, self.head_seq - self.verified_count)


@dataclass
class AuditorHome:
    since: object
    chain: Chain
    waivers: list = field(default_factory=list)
    waiver_count: int = 0
    emergencies: list = field(default_factory=list)
    emergency_count: int = 0
    emergency_link: str = ""
    admins: list = field(default_factory=list)  # (user, [where (how)])
    role_changes: int = 0
    role_changes_link: str = ""
    failed_logins: int = 0
    lockouts: int = 0
    failed_by_name: list = field(default_factory=list)  # (username, count)
    failed_link: str = ""


def _audit_link(action: str, since) -> str:
    return f"{reverse('audit:list')}?{urlencode({'action': action, 'start': f'{since:%Y-%m-%d}'})}"


def chain_status() -> Chain:
    last = (
        AuditEvent.objects.filter(action="audit.chain.verified")
        .order_by("-seq")
        .values("occurred_at", "after")
        .first()
    )
    # The trail is written in lanes (docs/audit-chain.md): its length is the lanes' counts added up,
    # its head the last event's hash (as audit.services.verify() reports them).
    counts = list(ChainHead.objects.values_list("seq", flat=True))
    tip = AuditEvent.objects.order_by("-seq").values_list("hash", flat=True).first()
    head = {"seq": sum(counts), "hash": tip or ""}
    heads = published_heads()
    published = dict(heads[-1]) if heads else None
    if published:
        try:
            published["at"] = datetime.fromisoformat(str(published.get("published_at", "")))
        except ValueError:
            published["at"] = None
    chain = Chain("unverified", head_seq=head["seq"], head_hash=head["hash"], published=published)
    if last:
        after = last["after"] or {}
        chain.state = "intact" if after.get("ok") else "broken"
        chain.verified_at = last["occurred_at"]
        chain.verified_count = int(after.get("count") or 0)
        chain.problem = str(after.get("problem") or "")
    return chain


def auditor_home(user) -> AuditorHome:
    period = metrics.period(None, None, metrics.ZONE_UTC)  # the last DAYS days, today included
    since = period.start
    home = AuditorHome(since=since, chain=chain_status())
    waivers = GateWaiver.objects.filter(Q(revoked_at__isnull=True) | Q(waived_at__gte=since)).filter(
        rfc_visible(user, "rfc")  # asked per waiver, not by gathering every visible RFC first
    )
    home.waiver_count = waivers.count()
    home.waivers = list(waivers.select_related("rfc", "waived_by").order_by("-waived_at", "-pk")[:ROWS])
    emergencies = visible_rfcs(user).filter(emergency=True, submitted_at__gte=since)
    home.emergency_count = emergencies.count()
    home.emergencies = list(
        emergencies.only("uuid", "number", "title", "state").order_by("-submitted_at", "-pk")[:ROWS]
    )
    home.emergency_link = f"{reverse('releases:list')}?" + urlencode(
        {"metric": "emergency", "since": f"{period.since:%Y-%m-%d}", "until": f"{period.until:%Y-%m-%d}"}
    )
    admins = list(User.objects.filter(is_active=True).order_by("username"))
    held = access.grants(admins)
    codes = dict(access.visible_sites(user).values_list("pk", "code"))
    for person in admins:
        where = [
            (_("every site") if g.site_id is None else codes.get(g.site_id, _("another site")))
            + f" ({g.via})"
            for g in held[person.pk]
            if g.role == Role.ADMIN
        ]
        if person.is_superuser:
            where.append(_("every site (superuser)"))
        if where:
            home.admins.append((person, where))
    recent = AuditEvent.objects.filter(occurred_at__gte=since)
    # The actions counted, named in the filter too: the database reads them through the action index
    # instead of every event of the period.
    counted = [*ROLE_CHANGES, "accounts.login.failed", "accounts.lockout.locked"]
    counts = recent.filter(action__in=counted).aggregate(
        roles=Count("pk", filter=Q(action__in=ROLE_CHANGES)),
        failed=Count("pk", filter=Q(action="accounts.login.failed")),
        locked=Count("pk", filter=Q(action="accounts.lockout.locked")),
    )
    home.role_changes, home.failed_logins, home.lockouts = counts["roles"], counts["failed"], counts["locked"]
    home.role_changes_link = _audit_link("accounts", since)
    home.failed_by_name = list(
        recent.filter(action="accounts.login.failed")
        .values_list("actor_name")
        .annotate(n=Count("pk"))
        .order_by("-n", "actor_name")[:5]
    )
    home.failed_link = _audit_link("accounts.login.failed", since)
    return home


@dataclass
class ManagerSummary:
    board: metrics.Figures
    codes: list[str]
    link: str  # the dashboard for these sites and this period
    figures: list[dict]
    as_of: datetime  # when the figures were computed
    as_of_local: str  # the same in the period's zone, as the page shows it


def manager_summary(user) -> ManagerSummary | None:
    """The dashboard's key figures over the last metrics.DEFAULT_DAYS days for the sites where `user`
    is an IT manager, operations manager, plant director or CIO (None when nowhere)."""
    if not access.all_roles(user) & set(MANAGER_ROLES):
        return None  # no query for everyone else
    sites = [
        s for s in access.visible_sites(user).order_by("code") if access.has_any_role(user, MANAGER_ROLES, s)
    ]
    if not sites:
        return None
    period = metrics.period(None, None, metrics.zone_for(sites))
    board, as_of = recent_figures(sites, period)
    query = {"since": f"{period.since:%Y-%m-%d}", "until": f"{period.until:%Y-%m-%d}"}
    code = sites[0].code if len(sites) == 1 else ""
    if code:
        query["site"] = code
    keys = figures.key_figures(board, lambda metric: figure_link(metric, code, period))
    return ManagerSummary(
        board,
        [s.code for s in sites],
        f"{reverse('dashboard')}?{urlencode(query)}",
        keys,
        as_of=as_of,
        as_of_local=f"{as_of.astimezone(period.zone):%H:%M %Z}",
    )


def recent_figures(sites, period: metrics.Period) -> tuple[metrics.Figures, datetime]:
    """The key figures of `sites` over `period` (metrics.figures) and when they were computed: from the
    cache when computed less than FIGURES_FOR ago for the same sites and period, else afresh (and kept).
    Only numbers are kept; the sites and the period are the caller's. Any Django cache serves (the
    default keeps them in the process's memory)."""
    key = "home-figures:{}:{}:{}:{}".format(
        ",".join(str(pk) for pk in sorted(s.pk for s in sites)), period.since, period.until, period.zone.key
    )
    kept = cache.get(key)
    if kept is None:
        board = metrics.figures(sites, period)
        kept = {
            "as_of": clock.now(),
            "outcomes": board.outcomes,
            "lead_time": board.lead_time,
            "restore": board.restore,
            "rfcs_submitted": board.rfcs_submitted,
            "emergencies": board.emergencies,
        }
        cache.set(key, kept, FIGURES_FOR.total_seconds())
    kept = dict(kept)
    as_of = kept.pop("as_of")
    return metrics.Figures(sites=list(sites), period=period, **kept), as_of
