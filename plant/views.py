from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from environments import access, fidelity
from environments.forms import DependencyForm, EnvironmentForm
from environments.models import TIER_ORDER, Environment, Tier
from environments.services import update_environment


@login_required
def board(request):
    """Every site the user may see, with its tiers and their active versions at a glance (E9)."""
    sites = access.visible_sites(request.user).prefetch_related(
        Prefetch("environments", queryset=Environment.objects.order_by("tier").prefetch_related("products"))
    )
    rows = []
    for site in sites:
        by_tier = {env.tier: env for env in site.environments.all()}
        rows.append({"site": site, "cells": [by_tier.get(tier) for tier in Tier]})
    return render(request, "environments/board.html", {"rows": rows, "tiers": list(Tier)})


def environment_or_404(request, code: str, tier: str) -> Environment:
    """The environment at this address, if the user may see it (404 otherwise)."""
    return access.get_visible_or_404(
        Environment.objects.select_related("site").prefetch_related("products"),
        request.user,
        site__code=code,
        tier=tier.upper(),
    )


@login_required
def detail(request, code: str, tier: str):
    return _render_detail(request, environment_or_404(request, code, tier))


def _render_detail(request, env: Environment, **extra):
    from environments import terminals

    siblings = sorted(env.site.environments.prefetch_related("products"), key=lambda e: TIER_ORDER[e.tier])
    return render(
        request,
        "environments/detail.html",
        {
            "env": env,
            "siblings": siblings,
            "may_configure": access.can(request.user, "configure", env),
            "terminals": terminals.status(env),
            "signals": signals_context(env),
            "dependencies": list(env.dependencies.all()),
            "dependency_form": extra.pop("dependency_form", None) or DependencyForm(),
            **evidence_context(env),
            **extra,
        },
    )


@login_required
@require_POST
def terminal_token(request, code: str, tier: str):
    """A new terminal token for the site, shown once on the page (the old one stops working)."""
    from environments import terminals

    env = environment_or_404(request, code, tier)
    access.require(request.user, "configure", env)
    raw = terminals.issue_token(env.site, by=request.user)
    response = _render_detail(request, env, new_terminal_token=raw)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def dependency_save(request, code: str, tier: str):
    """Add a dependency to the fidelity register, or change the one of that name."""
    env = environment_or_404(request, code, tier)
    access.require(request.user, "configure", env)
    form = DependencyForm(request.POST)
    if form.is_valid():
        try:
            fidelity.save_dependency(request.user, env, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in getattr(exc, "error_dict", {None: exc.error_list}).items():
                form.add_error(field if field in form.fields else None, errors)
    if form.errors:
        response = _render_detail(request, env, dependency_form=form)
        response.status_code = 400
        return response
    messages.success(
        request,
        _("%(dependency)s saved in the register of %(environment)s.")
        % {"dependency": form.cleaned_data["name"], "environment": env},
    )
    return redirect(f"{reverse('environments:detail', args=[env.site.code, env.tier])}#fidelity")


@login_required
@require_POST
def dependency_remove(request, code: str, tier: str, dependency_id: int):
    env = environment_or_404(request, code, tier)
    try:
        fidelity.remove_dependency(request.user, env, dependency_id)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, _("Dependency removed from the register of %(environment)s.") % {"environment": env}
        )
    return redirect(f"{reverse('environments:detail', args=[env.site.code, env.tier])}#fidelity")


@login_required
@require_http_methods(["GET", "POST"])
def edit(request, code: str, tier: str):
    env = environment_or_404(request, code, tier)
    access.require(request.user, "configure", env)
    can_set_version = access.can(request.user, "set_version", env)
    form = EnvironmentForm(
        request.POST or None, instance=Environment.objects.get(pk=env.pk), can_set_version=can_set_version
    )
    if request.method == "POST" and form.is_valid():
        try:
            update_environment(request.user, env, form.changes(), form.cleaned_data["reason"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("%(environment)s updated.") % {"environment": env})
            return redirect("environments:detail", code=env.site.code, tier=env.tier)
    return render(
        request, "environments/edit.html", {"env": env, "form": form}, status=400 if form.errors else 200
    )


# --- Business signals on the environment page ---------------------------------------------------
def _judged(spec: dict) -> str:
    """How the portal judges one signal, in the reader's language."""
    said = []
    bounds = {"min": _("at least %(n)s"), "max": _("at most %(n)s")}
    limits = [bounds[key] % {"n": f"{spec[key]:g}"} for key in ("min", "max") if key in spec]
    if limits:
        said.append(_("before PROD: %(limits)s") % {"limits": ", ".join(limits)})
    if "good" in spec:
        direction = _("higher is better") if spec["good"] == "higher" else _("lower is better")
        said.append(
            _("after a deployment: %(direction)s, at most %(tolerance)s %% worse than before")
            % {"direction": direction, "tolerance": f"{float(spec.get('tolerance', 0.2)) * 100:g}"}
        )
    if spec["adapter"] == "terminals":
        said.append(
            _("every terminal on the new version within %(minutes)d minutes of the apply")
            % {"minutes": int(spec.get("within_minutes", 30))}
        )
    return "; ".join(said)


def signals_context(env: Environment) -> dict:
    from environments.models import SignalReading
    from plant import signals

    declared = signals.declared(env)
    reading = (
        SignalReading.objects.filter(environment=env).order_by("-taken_at", "-pk").first()
        if declared
        else None
    )
    last = {r["name"]: r for r in (reading.readings if reading else [])}
    sources = {"sql": _("SQL query"), "http": _("HTTP probe"), "terminals": _("Terminal reports")}
    return {
        "rows": [
            {
                "name": s["name"],
                "source": sources[s["adapter"]],
                "judged": _judged(s),
                "last": last.get(s["name"]),
            }
            for s in declared
        ],
        "reading": reading,
        "readable": any(signals.judged_as_readiness(s) for s in declared),
    }


@login_required
@require_POST
def read_signals(request, code: str, tier: str):
    """Read the environment's readiness signals now (what the gate before PROD judges)."""
    from plant import signals

    env = environment_or_404(request, code, tier)
    access.require(request.user, "configure", env)
    reading = signals.take_reading(env, "request")
    if reading is None:
        messages.error(request, _("%(environment)s declares no readiness signals.") % {"environment": env})
    elif reading.ok:
        messages.success(request, _("Signals of %(environment)s read: all in range.") % {"environment": env})
    else:
        messages.error(
            request, _("Signals of %(environment)s read: not ready — see below.") % {"environment": env}
        )
    return redirect("environments:detail", code=env.site.code, tier=env.tier)


# --- Computed evidence on the environment page ---------------------------------------------
def evidence_context(env: Environment) -> dict:
    from environments.models import RefreshRun
    from plant.evidence import drift_against_neighbour, freshness, masking_rules
    from plant.plantdb import has_database

    other, differences = drift_against_neighbour(env)
    return {
        "has_database": has_database(env),
        "refreshes": RefreshRun.objects.filter(target=env).select_related("source", "requested_by")[:5],
        "masking_rules": masking_rules(env.site),
        "freshness": freshness(env) if env.tier == Tier.UAT else None,
        "drift_with": other,
        "drift": differences,
    }


@login_required
@require_http_methods(["POST"])
def refresh(request, code: str, tier: str):
    from core.errors import StateConflict
    from plant.evidence import request_refresh

    env = environment_or_404(request, code, tier)
    try:
        request_refresh(request.user, env)
    except (ValidationError, StateConflict) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(
            request,
            _("Refresh of %(environment)s from PROD queued; masking runs before %(tier)s sees the data.")
            % {"environment": env, "tier": env.tier},
        )
    return redirect("environments:detail", code=env.site.code, tier=env.tier)


@login_required
@require_http_methods(["POST"])
def fingerprint(request, code: str, tier: str):
    from plant.evidence import record_fingerprint

    env = environment_or_404(request, code, tier)
    access.require(request.user, "configure", env)
    record_fingerprint(env)
    messages.success(request, _("Fingerprint of %(environment)s recorded.") % {"environment": env})
    return redirect("environments:detail", code=env.site.code, tier=env.tier)
