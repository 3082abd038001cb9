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


SIGNALS = gettext_noop("Business signals ready")


@gates.gate(SIGNALS, applies_from=frozenset({"deploy"}))
def business_signals_ready(rfc) -> gates.Gate:
    """Seed 001's production-readiness gates: each target PROD's readiness signals (queue depth stable,
    0 critical integration failures, terminals on the active version …) in range in a fresh reading.
    The worker reads them every few minutes and again right before it touches PROD (plant/signals.py).
    Fail closed: no fresh reading, or a signal that could not be read, fails the gate."""
    from plant import signals

    prods = list(
        Environment.objects.filter(
            site__in=[impact.site_id for impact in rfc.impacts.all()], tier=Tier.PROD
        ).select_related("site")
    )
    watched = [env for env in prods if any(signals.judged_as_readiness(s) for s in signals.declared(env))]
    if not watched:
        return gates.Gate(
            SIGNALS, True, _("No readiness signals are declared for the target PROD environments.")
        )
    readings = signals.latest(watched)
    refused, fine = [], []
    for env in watched:
        reading = readings.get(env.pk)
        if reading is None:
            refused.append(
                _(
                    "%(environment)s: no reading in the last %(minutes)d minutes — the worker reads them every "
                    "few minutes (is it running?), or read them now on the environment page."
                )
                % {"environment": env, "minutes": signals.fresh_for().seconds // 60}
            )
            continue
        said = "; ".join(
            f"{r['name']}: {r['text']}" for r in reading.readings if not reading.ok and not r["ok"]
        )
        if not reading.ok:
            refused.append(_("%(environment)s: %(signals)s") % {"environment": env, "signals": said})
        else:
            fine.append(
                _("%(environment)s: %(signals)s")
                % {
                    "environment": env,
                    "signals": "; ".join(f"{r['name']} {r['text']}" for r in reading.readings),
                }
            )
    if refused:
        return gates.Gate(SIGNALS, False, " ".join(refused))
    return gates.Gate(SIGNALS, True, " ".join(fine))
