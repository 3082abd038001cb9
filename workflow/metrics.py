"""How change is going: the dashboard's figures (issue 17), computed by the database.

DORA's four keys and the plant's own figures, for a set of sites and a period of local days:

- deployment frequency: PROD deployments that succeeded in the period, per day;
- lead time: an RFC's submission → the end of its successful PROD deployment (median and mean);
- change failure rate: of the PROD deployments that started and ended in the period, those that
  rolled back (restored or not) or failed; change success rate is the rest, rollback rate the share
  that rolled back;
- time to restore: a rollback's duration (its start → the deployment's end), median and mean;
- emergency ratio: emergency RFCs among those submitted in the period;
- approval latency per step and role: a decision's time → its step's activation;
- schedule adherence: PROD deployments booked to start in the period — started on time (within
  ON_TIME of the booked start), late, missed, refused by a gate at the start, cancelled, still to come;
- gate failure reasons by frequency (`releases.GateRefusal`).

A period is a span of whole days in one zone: a site's own zone for one site, UTC across sites (a
deployment at 23:30 UTC belongs to the next day in Berlin and the same day in Chicago). Each figure is
one aggregate query (a median two), so a dashboard costs the same number of queries whatever the
number of RFCs; `behind()` gives the RFCs behind each figure to the RFC list (the same definitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import (
    Avg,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Trunc
from django.utils.translation import gettext, gettext_lazy

from approvals.models import Approval
from core import clock
from core.roles import Role
from deployments.models import Deployment
from deployments.states import DeploymentState
from environments.models import Site, Tier
from releases.models import GateRefusal, Impact, Rfc

S = DeploymentState
ON_TIME = timedelta(minutes=5)
DEFAULT_DAYS = 30
MAX_DAYS = 366 * 3
DAILY_UP_TO = 62  # longer periods are charted by week
ROLLED_BACK = (S.ROLLED_BACK, S.ROLLBACK_FAILED)


@dataclass(frozen=True)
class Period:
    since: date
    until: date  # inclusive
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), time.min, self.zone)

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def bucket(self) -> str:
        return "day" if self.days <= DAILY_UP_TO else "week"

    def buckets(self) -> list[date]:
        if self.bucket == "day":
            return [self.since + timedelta(days=n) for n in range(self.days)]
        first = self.since - timedelta(days=self.since.weekday())
        return [first + timedelta(weeks=n) for n in range((self.until - first).days // 7 + 1)]

    def query(self) -> str:
        return f"since={self.since:%Y-%m-%d}&until={self.until:%Y-%m-%d}"


def period(since: str | date | None, until: str | date | None, zone: ZoneInfo) -> Period:
    """The period from two dates (YYYY-MM-DD; the last DEFAULT_DAYS days up to today when absent).
    Refuses, with a sentence, a date that cannot be read, an end before the start, or a span over
    three years."""
    today = clock.now().astimezone(zone).date()

    def read(value, name):
        if value in (None, ""):
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            raise ValidationError({name: gettext("Give the date as YYYY-MM-DD, e.g. 2026-11-01.")}) from None

    last = read(until, "until") or today
    first = read(since, "since") or last - timedelta(days=DEFAULT_DAYS - 1)
    if abs((last - today).days) > 3660 or abs((first - today).days) > 3660:
        raise ValidationError({"since": gettext("Choose dates within ten years of today.")})
    if first > last:
        raise ValidationError({"until": gettext("The period ends before it starts.")})
    if (last - first).days >= MAX_DAYS:
        raise ValidationError({"since": gettext("Choose a period of at most three years.")})
    return Period(first, last, zone)


ZONE_UTC = ZoneInfo("UTC")


def zone_for(sites: list[Site]) -> ZoneInfo:
    return sites[0].zone if len(sites) == 1 else ZONE_UTC


def _prod(site_ids) -> QuerySet:
    return Deployment.objects.filter(environment__tier=Tier.PROD, environment__site_id__in=site_ids)


def _in(field: str, p: Period) -> Q:
    return Q(**{f"{field}__gte": p.start, f"{field}__lt": p.end})


def _span(later: str, earlier: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


STARTED = Q(started_at__isnull=False)
SUCCEEDED = Q(state=S.SUCCEEDED)
ROLLED = Q(state__in=ROLLED_BACK)
FAILED_AFTER_START = Q(state=S.FAILED) & STARTED
REFUSED_AT_START = Q(state=S.FAILED, started_at__isnull=True)


def _outcomes(p: Period) -> dict[str, Q]:
    ended = _in("finished_at", p)
    booked = _in("scheduled_start", p)
    late_start = Q(started_at__gt=F("scheduled_start") + ON_TIME)
    return {
        "succeeded": ended & SUCCEEDED,
        "rolled_back": ended & ROLLED,
        "failed": ended & FAILED_AFTER_START,
        "started": ended & STARTED & (SUCCEEDED | ROLLED | Q(state=S.FAILED)),
        "booked": booked,
        "on_time": booked & STARTED & ~late_start,
        "late": booked & STARTED & late_start,
        "missed": booked & Q(state=S.MISSED),
        "refused": booked & REFUSED_AT_START,
        "cancelled": booked & Q(state=S.CANCELLED),
        "to_come": booked & Q(state=S.SCHEDULED),
    }


@dataclass
class Stats:
    count: int = 0
    mean: timedelta | None = None
    median: timedelta | None = None


def _stats(queryset: QuerySet, span: ExpressionWrapper) -> Stats:
    """Count, mean and median of a duration: two queries (the median is the middle row by order)."""
    figures = queryset.annotate(span=span).aggregate(count=Count("pk"), mean=Avg("span"))
    count = figures["count"] or 0
    if not count:
        return Stats()
    middle = list(
        queryset.annotate(span=span)
        .order_by("span")
        .values_list("span", flat=True)[(count - 1) // 2 : count // 2 + 1]
    )
    median = sum(middle, timedelta()) / len(middle)
    return Stats(count, _duration(figures["mean"]), median)


def _duration(value) -> timedelta | None:
    """Avg over a duration: a timedelta on PostgreSQL, microseconds on SQLite."""
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(microseconds=float(value))


@dataclass
class Figures:
    """The key figures (reports/figures.py `key_figures`): what the managers' home page shows."""

    sites: list[Site]
    period: Period
    outcomes: dict[str, int]
    lead_time: Stats
    restore: Stats
    rfcs_submitted: int
    emergencies: int

    def rate(self, part: str, whole: str = "started") -> float | None:
        total = self.outcomes.get(whole) or 0
        return None if not total else self.outcomes.get(part, 0) / total

    @property
    def frequency(self) -> float:
        return self.outcomes["succeeded"] / self.period.days

    @property
    def failure_rate(self) -> float | None:
        total = self.outcomes["started"]
        return None if not total else (self.outcomes["rolled_back"] + self.outcomes["failed"]) / total

    @property
    def success_rate(self) -> float | None:
        return self.rate("succeeded")

    @property
    def rollback_rate(self) -> float | None:
        return self.rate("rolled_back")

    @property
    def emergency_ratio(self) -> float | None:
        return None if not self.rfcs_submitted else self.emergencies / self.rfcs_submitted

    @property
    def adherence(self) -> float | None:
        started = self.outcomes["on_time"] + self.outcomes["late"] + self.outcomes["missed"]
        return None if not started else self.outcomes["on_time"] / started


@dataclass
class Dashboard(Figures):
    """The key figures and what the dashboard charts besides: per day, per approval step, per gate and
    per site."""

    series: list[dict]
    approvals: list[dict]
    gates: list[dict]
    per_site: list[dict]


def figures(sites: list[Site], p: Period) -> Figures:
    """The key figures for `sites` over `p`, and nothing else: six queries at most."""
    site_ids = [s.pk for s in sites]
    prod = _prod(site_ids)
    conditions = _outcomes(p)
    outcomes = prod.filter(_in("finished_at", p) | _in("scheduled_start", p)).aggregate(
        **{key: Count("pk", filter=q) for key, q in conditions.items()}
    )
    lead_time = _stats(
        prod.filter(conditions["succeeded"], rfc__submitted_at__isnull=False),
        _span("finished_at", "rfc__submitted_at"),
    )
    restore = _stats(
        prod.filter(conditions["rolled_back"], rollback_started_at__isnull=False),
        _span("finished_at", "rollback_started_at"),
    )
    submitted = _submitted(site_ids, p).aggregate(
        total=Count("pk"), emergency=Count("pk", filter=Q(emergency=True))
    )
    return Figures(
        sites=sites,
        period=p,
        outcomes=outcomes,
        lead_time=lead_time,
        restore=restore,
        rfcs_submitted=submitted["total"],
        emergencies=submitted["emergency"],
    )


def dashboard(sites: list[Site], p: Period) -> Dashboard:
    """Every figure for `sites` over `p`: a constant number of queries (eleven at most)."""
    site_ids = [s.pk for s in sites]
    prod = _prod(site_ids)
    per_site = []
    if len(sites) > 1:
        per_site = list(
            prod.filter(_in("finished_at", p))
            .values(code=F("environment__site__code"))
            .annotate(
                succeeded=Count("pk", filter=SUCCEEDED),
                rolled_back=Count("pk", filter=ROLLED),
                failed=Count("pk", filter=FAILED_AFTER_START),
            )
            .order_by("code")
        )
        for row in per_site:
            started = row["succeeded"] + row["rolled_back"] + row["failed"]
            row["started"] = started
            row["failure_rate"] = (row["rolled_back"] + row["failed"]) / started if started else None
    return Dashboard(
        **vars(figures(sites, p)),
        series=_series(prod, p),
        approvals=_approvals(site_ids, p),
        gates=_gates(site_ids, p),
        per_site=per_site,
    )


def _series(prod: QuerySet, p: Period) -> list[dict]:
    """Per local day (per week for a long period): PROD deployments succeeded, rolled back, failed."""
    rows = (
        prod.filter(_in("finished_at", p), STARTED)
        .annotate(bucket=Trunc("finished_at", p.bucket, output_field=DateTimeField(), tzinfo=p.zone))
        .values("bucket")
        .annotate(
            succeeded=Count("pk", filter=SUCCEEDED),
            rolled_back=Count("pk", filter=ROLLED),
            failed=Count("pk", filter=Q(state=S.FAILED)),
        )
        .order_by("bucket")
    )
    found = {}
    for row in rows.values("bucket", "succeeded", "rolled_back", "failed"):
        bucket = row.pop("bucket")
        day = bucket.astimezone(p.zone).date() if isinstance(bucket, datetime) else bucket
        found[day] = row
    empty = {"succeeded": 0, "rolled_back": 0, "failed": 0}
    return [{"day": day, **found.get(day, empty)} for day in p.buckets()]


def _submitted(site_ids, p: Period) -> QuerySet:
    return Rfc.objects.filter(
        _in("submitted_at", p), Exists(Impact.objects.filter(rfc=OuterRef("pk"), site_id__in=site_ids))
    )


def _approvals(site_ids, p: Period) -> list[dict]:
    rows = (
        Approval.objects.filter(_in("decided_at", p), site_id__in=site_ids, step__activated_at__isnull=False)
        .annotate(wait=_span("decided_at", "step__activated_at"))
        .values("step__order", "role")
        .annotate(count=Count("pk"), mean=Avg("wait"), longest=Max("wait"))
        .order_by("step__order", "role")
    )
    return [
        {
            "step": row["step__order"],
            "role": row["role"],
            "role_label": Role(row["role"]).label if row["role"] in Role.values else row["role"],
            "count": row["count"],
            "mean": _duration(row["mean"]),
            "longest": _duration(row["longest"]),
        }
        for row in rows
    ]


def _gates(site_ids, p: Period) -> list[dict]:
    return list(
        GateRefusal.objects.filter(
            _in("occurred_at", p),
            Exists(Impact.objects.filter(rfc=OuterRef("rfc"), site_id__in=site_ids)),
        )
        .values("gate")
        .annotate(count=Count("pk"), rfcs=Count("rfc", distinct=True))
        .order_by("-count", "gate")
    )


# --- The RFCs behind a figure (the RFC list's `metric` filter) ------------------------------------
FIGURES = {
    "succeeded": gettext_lazy("succeeded in PROD"),
    "rolled_back": gettext_lazy("rolled back in PROD"),
    "failed": gettext_lazy("failed in PROD after starting"),
    "started": gettext_lazy("deployed to PROD (any outcome)"),
    "booked": gettext_lazy("booked to start in PROD"),
    "on_time": gettext_lazy("started in PROD on time"),
    "late": gettext_lazy("started in PROD late"),
    "missed": gettext_lazy("missed their PROD window"),
    "refused": gettext_lazy("refused by a gate at the PROD start"),
    "cancelled": gettext_lazy("had a PROD booking cancelled"),
    "to_come": gettext_lazy("still booked in PROD"),
    "submitted": gettext_lazy("submitted"),
    "emergency": gettext_lazy("submitted as emergency changes"),
}


def describe(metric: str, *, strict: bool = False) -> str:
    """What a figure counts, in words; `strict` refuses one the dashboard does not show."""
    if metric.startswith("gate:") and metric[5:].strip():
        return gettext("refused by the gate “%(gate)s”") % {"gate": gettext(metric[5:])}
    if metric.startswith("approval:"):
        _, step, role = (metric.split(":", 2) + ["", ""])[:3]
        if step.isdigit() and role in Role.values:
            return gettext("decided by the %(role)s at step %(step)s") % {
                "role": Role(role).label,
                "step": step,
            }
    if metric in FIGURES:
        return str(FIGURES[metric])
    if strict:
        raise ValidationError({"metric": gettext("There is no such figure on the dashboard.")})
    return metric


def behind(metric: str, site_ids, p: Period) -> Q:
    """A condition on Rfc: the RFCs a figure of `dashboard(sites, p)` counts. Refuses an unknown one."""
    if metric in ("submitted", "emergency"):
        found = _submitted(site_ids, p)
        if metric == "emergency":
            found = found.filter(emergency=True)
        return Q(pk__in=found.values("pk"))
    if metric.startswith("gate:") and metric[5:]:
        refusals = GateRefusal.objects.filter(_in("occurred_at", p), gate=metric[5:], rfc=OuterRef("pk"))
        return Q(Exists(refusals)) & Q(
            Exists(Impact.objects.filter(rfc=OuterRef("pk"), site_id__in=site_ids))
        )
    if metric.startswith("approval:"):
        _, step, role = (metric.split(":", 2) + ["", ""])[:3]
        if step.isdigit() and role in Role.values:
            decided = Approval.objects.filter(
                _in("decided_at", p),
                site_id__in=site_ids,
                step__order=int(step),
                role=role,
                step__activated_at__isnull=False,
                rfc=OuterRef("pk"),
            )
            return Q(Exists(decided))
    conditions = _outcomes(p)
    if metric in conditions:
        return Q(Exists(_prod(site_ids).filter(conditions[metric], rfc=OuterRef("pk"))))
    raise ValidationError({"metric": gettext("There is no such figure on the dashboard.")})
