"""The feature flags page of an environment: each flag its releases declared, on or off here, and the
switch (a standard change: a reason, a window unless the flag is safe, checked and reversible)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import StateConflict
from deployments import flags
from deployments.models import FlagChange
from environments.models import Environment
from plant.views import environment_or_404


def _page(request, env: Environment, status: int = 200, error: str = ""):
    available = flags.available(env)
    return render(
        request,
        "environments/flags.html",
        {
            "env": env,
            "flags": available,
            "pending": any(f["pending"] for f in available),  # the page follows the switch
            "may_switch": flags.may_switch(request.user, env),
            "history": FlagChange.objects.filter(environment=env).select_related("requested_by")[:20],
            "error": error,
        },
        status=status,
    )


@login_required
@require_GET
def flags_page(request, code: str, tier: str):
    return _page(request, environment_or_404(request, code, tier))


@login_required
@require_POST
def flag_switch(request, code: str, tier: str):
    env = environment_or_404(request, code, tier)
    key, state = request.POST.get("key", ""), request.POST.get("state", "")
    if state not in ("on", "off"):
        return _page(request, env, 400, _("Choose to turn the flag on or off."))
    try:
        change = flags.request(request.user, env, key, state == "on", request.POST.get("reason", ""))
    except ValidationError as exc:
        return _page(request, env, 400, " ".join(m for ms in exc.message_dict.values() for m in ms))
    except StateConflict as exc:
        return _page(request, env, 409, str(exc))
    messages.success(
        request,
        _("Switching %(key)s %(state)s at %(environment)s: the worker switches it and checks the line.")
        % {"key": change.key, "state": _("on") if change.on else _("off"), "environment": env},
    )
    return redirect("environments:flags", code=env.site.code, tier=env.tier)
