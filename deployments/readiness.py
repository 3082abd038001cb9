"""The "PROD pipeline complete" gate (X1, X2, R3, C5): booking or running a PROD deployment asks
whether every target site's PROD pipeline snapshots, backs up and smoke-tests — the same rule the
model and the admin apply when a pipeline is saved (environments/pipelines.py). A pipeline written
around them (a fixture, a data migration, an older row) still cannot reach PROD."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from environments.models import Environment, Tier
from environments.pipelines import pipeline_problems
from releases import gates

RULE = gettext_noop("PROD pipeline complete")  # the gate's name: a key, translated where shown


def problems_of(environment: Environment) -> list[str]:
    return pipeline_problems(environment.pipeline, environment.tier, environment.vm_name)


@gates.gate(RULE, applies_from=frozenset({"schedule", "deploy"}))
def prod_pipeline_complete(rfc) -> gates.Gate:
    sites = [impact.site for impact in rfc.impacts.all()]
    prods = {
        env.site_id: env
        for env in Environment.objects.filter(site__in=[s.pk for s in sites], tier=Tier.PROD).select_related(
            "site"
        )
    }
    refused, fine = [], []
    for site in sites:
        env = prods.get(site.pk)
        if env is None:
            refused.append(_("%(site)s has no PROD environment.") % {"site": site.code})
            continue
        found = problems_of(env)
        if found:
            refused.append(
                _("%(site)s PROD pipeline: %(problems)s") % {"site": site.code, "problems": " ".join(found)}
            )
        else:
            fine.append(site.code)
    if refused:
        return gates.Gate(RULE, False, " ".join(refused))
    if not fine:
        return gates.Gate(RULE, False, _("No target site is named."))
    return gates.Gate(
        RULE,
        True,
        _("%(sites)s: snapshot, backup and smoke test configured for PROD.") % {"sites": ", ".join(fine)},
    )
