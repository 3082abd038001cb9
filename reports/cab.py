"""The change-advisory view (issue 16 item 6): the PROD changes booked for the week ahead, by site
and local day, with their class, risk, change model, ring, conflicts and gate status — the agenda
of a CAB meeting, on the page and exported as CSV and PDF.

Queries: a constant number for the deployments, impacts, standard-change uses and conflicts; the
gates are evaluated per RFC on the list (a week's PROD bookings, a few dozen at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.translation import gettext as _

from approvals.models import StandardChangeUse
from deployments import conflicts
from deployments.models import Deployment
from deployments.states import ACTIVE
from environments import access
from environments.models import Tier
from releases import gates
from releases.models import Impact

DAYS = 7


@dataclass
class Row:
    deployment: Deployment
    local_day: str
    local_span: str
    model: str
    conflicts: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)

    @property
    def rfc(self):
        return self.deployment.rfc

    @property
    def site(self):
        return self.deployment.environment.site

    @property
    def risk(self) -> str:
        rfc = self.rfc
        level = rfc.get_risk_level_display() if rfc.risk_level else _("not assessed")
        if rfc.high_risk and rfc.risk_level != "high":
            return _("%(level)s (treated as high)") % {"level": level}
        return str(level)


def week(user, start: datetime, *, with_gates: bool = True) -> list[Row]:
    """The PROD deployments booked (or running) in [start, start + 7 days) at the sites `user` sees."""
    end = start + timedelta(days=DAYS)
    sites = list(access.visible_sites(user).values_list("pk", flat=True))
    nearby = list(
        Deployment.objects.filter(
            environment__site_id__in=sites,
            state__in=ACTIVE,
            scheduled_start__lt=end + timedelta(hours=12),
            scheduled_end__gt=start,
        )
        .select_related("rfc__release", "environment__site")
        .order_by("environment__site__code", "scheduled_start", "pk")
    )
    impacts = {
        (i.rfc_id, i.site_id): conflicts.labelled(i)
        for i in Impact.objects.filter(rfc_id__in={d.rfc_id for d in nearby}, site_id__in=sites)
    }
    standard = {}
    for use in StandardChangeUse.objects.filter(rfc_id__in={d.rfc_id for d in nearby}).select_related(
        "template"
    ):
        standard.setdefault(use.rfc_id, use.template.name)
    rows = []
    for d in nearby:
        if d.environment.tier != Tier.PROD or not (start <= d.scheduled_start < end):
            continue
        zone = d.environment.site.zone
        local_start, local_end = d.scheduled_start.astimezone(zone), d.scheduled_end.astimezone(zone)
        model = (
            _("Emergency")
            if d.rfc.emergency
            else _("Standard: %(name)s") % {"name": standard[d.rfc_id]}
            if d.rfc_id in standard
            else _("Normal")
        )
        row = Row(d, f"{local_start:%a %d %b}", f"{local_start:%H:%M}–{local_end:%H:%M %Z}", model)
        mine = impacts.get((d.rfc_id, d.environment.site_id), {})
        for other in nearby:
            if (
                other.pk == d.pk
                or other.rfc_id == d.rfc_id
                or other.environment.site_id != d.environment.site_id
                or not (other.scheduled_start < d.scheduled_end and other.scheduled_end > d.scheduled_start)
            ):
                continue
            shared = sorted(set(mine) & set(impacts.get((other.rfc_id, other.environment.site_id), {})))
            if shared:
                row.conflicts.append(
                    _("%(rfc)s in %(tier)s: %(shared)s")
                    % {
                        "rfc": other.rfc.number,
                        "tier": other.environment.tier,
                        "shared": ", ".join(mine[key] for key in shared),
                    }
                )
        if with_gates:
            row.failing = [f"{g.name}: {g.reason}" for g in gates.failing(d.rfc, "deploy")]
        rows.append(row)
    return rows


def csv_rows(rows: list[Row]) -> list[list[str]]:
    from audit.trail import neutralise

    header = [
        "site",
        "day",
        "time",
        "rfc",
        "title",
        "release",
        "class",
        "risk",
        "model",
        "conflicts",
        "gates",
    ]
    body = [
        [
            row.site.code,
            row.local_day,
            row.local_span,
            row.rfc.number,
            row.rfc.title,
            str(row.rfc.release),
            row.rfc.get_change_class_display(),
            row.risk,
            row.model,
            " | ".join(row.conflicts),
            _("ready") if not row.failing else " | ".join(row.failing),
        ]
        for row in rows
    ]
    return [header] + [[neutralise(cell) for cell in line] for line in body]
