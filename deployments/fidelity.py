"""Staging fidelity of an RFC (issue 19, seed 001): for each target site, the dependencies the RFC
touches and how the tier that proves it (UAT, or DEV where the site has none: `promotion.proving`)
has each, against the site's PROD register (environments/fidelity.py).

The "Staging gaps accepted" gate (schedule and deploy, never waivable) fails
- when PROD's register does not list a touched dependency (configure it there, or correct the RFC);
- while a touched HIGH-criticality dependency is neither real nor a test endpoint in the proving
  tier, until a business owner of the site accepts exactly that gap for the release's artifact
  (`releases.models.RiskAcceptance`, recorded by workflow/fidelity.py).
Fail closed: a dependency the proving tier does not list counts as absent there, and a site with no
tier below PROD proves nothing. A dependency's criticality is the higher of PROD's and the proving
tier's: a register that plays it down in UAT does not hide it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from deployments.promotion import proving_among
from environments.fidelity import key
from environments.models import FAITHFUL_KINDS, Criticality, DependencyKind, Environment, Site, Tier
from releases import gates

RULE = gettext_noop("Staging gaps accepted")  # the gate's name: a key, translated where shown
RANK = {Criticality.LOW: 0, Criticality.MEDIUM: 1, Criticality.HIGH: 2}


@dataclass(frozen=True)
class Touch:
    """One dependency the RFC touches, at one site."""

    site: Site
    name: str
    proving: Environment | None
    kind: str  # how the proving tier has it; "absent" when its register does not list it
    registered: bool  # the proving tier's register lists it
    in_prod: bool  # PROD's register lists it
    criticality: str

    @property
    def faithful(self) -> bool:
        return self.kind in FAITHFUL_KINDS

    @property
    def kind_label(self) -> str:
        return DependencyKind(self.kind).label

    @property
    def criticality_label(self) -> str:
        return Criticality(self.criticality).label

    @property
    def needs_acceptance(self) -> bool:
        return self.in_prod and not self.faithful and self.criticality == Criticality.HIGH

    @property
    def tier(self) -> str:
        return self.proving.tier if self.proving is not None else Tier.UAT

    def gap(self) -> dict:
        """What an acceptance binds: the site, the tier, the dependency and how the tier has it."""
        return {"site": self.site.code, "tier": self.tier, "dependency": self.name, "kind": self.kind}


def gap_key(gap: dict) -> tuple:
    return (gap.get("site"), gap.get("tier"), key(str(gap.get("dependency", ""))), gap.get("kind"))


def touches(rfc) -> list[Touch]:
    """Every (site, dependency) the RFC touches, by site then in the RFC's order. No query when the
    RFC names no dependency."""
    if not rfc.dependencies:
        return []
    sites = [impact.site for impact in rfc.impacts.all()]
    by_site: dict[int, list[Environment]] = {}
    for env in Environment.objects.filter(site__in=[s.pk for s in sites]).prefetch_related("dependencies"):
        by_site.setdefault(env.site_id, []).append(env)
    found = []
    for site in sites:
        envs = by_site.get(site.pk, [])
        proving = proving_among(envs)
        prod = next((env for env in envs if env.tier == Tier.PROD), None)
        below = {key(d.name): d for d in proving.dependencies.all()} if proving is not None else {}
        above = {key(d.name): d for d in prod.dependencies.all()} if prod is not None else {}
        for name in rfc.dependencies:
            here, there = below.get(key(name)), above.get(key(name))
            levels = [d.criticality for d in (here, there) if d is not None] or [Criticality.HIGH]
            found.append(
                Touch(
                    site=site,
                    name=there.name if there is not None else name,
                    proving=proving,
                    kind=here.kind if here is not None else DependencyKind.ABSENT,
                    registered=here is not None,
                    in_prod=there is not None,
                    criticality=max(levels, key=lambda level: RANK[level]),
                )
            )
    return found


def acceptances(rfc):
    """The RFC's risk acceptances for the artifact it carries now, oldest first."""
    from releases.models import RiskAcceptance

    return RiskAcceptance.objects.filter(
        rfc_id=rfc.pk, artifact_sha256=rfc.release.artifact_sha256
    ).select_related("accepted_by")


def open_gaps(rfc, found: list[Touch] | None = None) -> list[Touch]:
    """The high-criticality gaps no acceptance for the current artifact covers."""
    needing = [t for t in (touches(rfc) if found is None else found) if t.needs_acceptance]
    if not needing:
        return []
    accepted = (
        {gap_key(g) for a in acceptances(rfc) for g in a.gaps}
        if len(rfc.release.artifact_sha256) == 64
        else set()
    )
    return [t for t in needing if gap_key(t.gap()) not in accepted]


def describe(t: Touch) -> str:
    if not t.registered:
        return _("%(site)s %(tier)s does not list %(name)s (counted as absent)") % {
            "site": t.site.code,
            "tier": t.tier,
            "name": t.name,
        }
    return _("%(site)s %(tier)s has %(name)s as %(kind)s") % {
        "site": t.site.code,
        "tier": t.tier,
        "name": t.name,
        "kind": t.kind_label.lower(),
    }


@gates.gate(RULE, applies_from=frozenset({"schedule", "deploy"}))
def staging_gaps_accepted(rfc) -> gates.Gate:
    found = touches(rfc)
    if not found:
        return gates.Gate(RULE, True, _("The RFC names no dependency it touches."))
    unknown: dict[str, list[str]] = {}
    for t in found:
        if not t.in_prod:
            unknown.setdefault(t.site.code, []).append(t.name)
    if unknown:
        return gates.Gate(
            RULE,
            False,
            " ".join(
                _(
                    "%(site)s PROD does not list %(names)s: add it to the dependency register of %(site)s "
                    "PROD (on its environment page), or correct the RFC's dependencies."
                )
                % {"site": site, "names": ", ".join(names)}
                for site, names in unknown.items()
            ),
        )
    missing = open_gaps(rfc, found)
    if missing:
        return gates.Gate(
            RULE,
            False,
            _(
                "Not accepted: %(gaps)s, of high criticality. A green UAT says little about it: the site's "
                "plant director or operations manager accepts the risk on the RFC page."
            )
            % {"gaps": "; ".join(describe(t) for t in missing)},
        )
    accepted = [t for t in found if t.needs_acceptance]
    if accepted:
        return gates.Gate(
            RULE,
            True,
            _("Accepted: %(gaps)s (%(who)s).")
            % {
                "gaps": "; ".join(describe(t) for t in accepted),
                "who": ", ".join(
                    _("%(name)s on %(date)s")
                    % {"name": a.accepted_by_name, "date": date_format(a.accepted_at, "SHORT_DATE_FORMAT")}
                    for a in acceptances(rfc)
                ),
            },
        )
    return gates.Gate(
        RULE, True, _("Every high-criticality dependency it touches is real or a test endpoint before PROD.")
    )
