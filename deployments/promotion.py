"""Promotion order (X5, E1): the one rule every path to an environment asks.

Each site's path is DEV → UAT → PROD, or DEV → PROD where the site has no UAT (seed 000: a valid
and common configuration). A deployment to a tier needs the same artifact (the same SHA-256) to
have succeeded in the tier before it at that site, and two deployments of one RFC to one site's
tiers never overlap in time. Deploying now (DEV, UAT), booking PROD, the UAT sign-off and the worker
right before it touches an environment all ask `refusal()`; the "Promotion order" gate asks it for
every target site's PROD.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from deployments.models import Deployment, DeploymentState
from deployments.states import ACTIVE, IN_PROGRESS
from environments.models import TIER_ORDER, Environment, Tier
from releases import gates

RULE = gettext_noop("Promotion order")  # the gate's name: a key, translated where shown


def path(site_id: int) -> list[Environment]:
    """The site's environments in promotion order."""
    found = Environment.objects.filter(site_id=site_id).select_related("site")
    return sorted(found, key=lambda env: TIER_ORDER[env.tier])


def previous(environment: Environment) -> Environment | None:
    """The environment the artifact must have succeeded in first (None for the first tier)."""
    before = [env for env in path(environment.site_id) if TIER_ORDER[env.tier] < TIER_ORDER[environment.tier]]
    return before[-1] if before else None


def proving(site_id: int) -> Environment | None:
    """Where a release is proven before PROD and signed off: UAT, or DEV where the site has none."""
    return proving_among(path(site_id))


def proving_among(environments) -> Environment | None:
    """`proving` among a site's environments already at hand."""
    below = sorted(
        (env for env in environments if env.tier != Tier.PROD), key=lambda env: TIER_ORDER[env.tier]
    )
    return below[-1] if below else None


def succeeded_in(environment: Environment, sha256: str) -> Deployment | None:
    """The newest deployment of this artifact that succeeded in `environment`."""
    if not sha256:
        return None
    return (
        Deployment.objects.filter(
            environment=environment, artifact_sha256=sha256, state=DeploymentState.SUCCEEDED
        )
        .order_by("-finished_at", "-pk")
        .first()
    )


def _short(sha256: str) -> str:
    return f"{sha256[:12]}…" if sha256 else _("(none recorded)")


def order_refusal(release, environment: Environment) -> str | None:
    """Why `release`'s artifact may not go to `environment` yet, or None."""
    before = previous(environment)
    if before is None:
        return None
    if succeeded_in(before, release.artifact_sha256) is None:
        return _(
            "%(release)s (artifact %(artifact)s) has not succeeded in %(before)s yet: %(environment)s takes "
            "only what succeeded in %(tier)s first."
        ) % {
            "release": release,
            "artifact": _short(release.artifact_sha256),
            "before": before,
            "environment": environment,
            "tier": before.tier,
        }
    return None


def overlap(rfc, environment: Environment, start: datetime, end: datetime, exclude=None) -> Deployment | None:
    """Another deployment of the RFC at the same site whose slot meets [start, end), or that runs now."""
    from django.db.models import Q

    found = (
        Deployment.objects.filter(rfc=rfc, environment__site_id=environment.site_id, state__in=ACTIVE)
        .filter(Q(scheduled_start__lt=end, scheduled_end__gt=start) | Q(state__in=IN_PROGRESS))
        .select_related("environment")
    )
    if exclude is not None:
        found = found.exclude(pk=exclude.pk)
    return found.first()


def overlap_refusal(
    rfc, environment: Environment, start: datetime, end: datetime, exclude=None
) -> str | None:
    other = overlap(rfc, environment, start, end, exclude)
    if other is None:
        return None
    return _(
        "%(rfc)s's deployment to %(environment)s is %(state)s in the same time: one site's tiers take one "
        "deployment of an RFC at a time."
    ) % {"rfc": rfc.number, "environment": other.environment, "state": other.get_state_display().lower()}


def refusal(rfc, environment: Environment, start: datetime, end: datetime, exclude=None) -> str | None:
    """Both rules for one deployment of `rfc` to `environment` in [start, end)."""
    return order_refusal(rfc.release, environment) or overlap_refusal(rfc, environment, start, end, exclude)


def signoff_refusal(rfc, site) -> str | None:
    """A key user signs off only what succeeded in the site's UAT (its DEV where it has no UAT)."""
    where = proving(site.pk)
    if where is None:
        return _("%(site)s has no DEV or UAT environment to prove the release in.") % {"site": site.code}
    if succeeded_in(where, rfc.release.artifact_sha256) is None:
        return _(
            "%(release)s (artifact %(artifact)s) has not succeeded in %(where)s yet: deploy it there and test "
            "it before signing off."
        ) % {"release": rfc.release, "artifact": _short(rfc.release.artifact_sha256), "where": where}
    return None


@gates.gate(RULE, applies_from=frozenset({"schedule", "deploy"}))
def promotion_gate(rfc) -> gates.Gate:
    problems, fine = [], []
    for impact in rfc.impacts.all():
        prod = next((env for env in path(impact.site_id) if env.tier == Tier.PROD), None)
        if prod is None:
            problems.append(_("%(site)s has no PROD environment") % {"site": impact.site.code})
            continue
        why = order_refusal(rfc.release, prod)
        if why:
            problems.append(why)
        else:
            fine.append(f"{previous(prod)}")
    if problems:
        return gates.Gate(RULE, False, " ".join(problems))
    return gates.Gate(
        RULE, True, _("The artifact succeeded in %(environments)s.") % {"environments": ", ".join(fine)}
    )
