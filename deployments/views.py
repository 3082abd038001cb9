"""The live deployment page: steps, durations and output refreshing through htmx while
the deployment runs; a release manager's rollback button; cancel before the start; DEV/UAT now."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.refusals import REFUSED, refusal
from deployments import engine, scheduling, states
from deployments.models import Deployment
from environments import access
from environments.models import Environment
from releases.services import rfc_or_404


def _deployment_or_404(request, uuid, deployment_uuid) -> Deployment:
    rfc = rfc_or_404(request.user, uuid)
    try:
        return Deployment.objects.select_related(
            "rfc", "rfc__release", "environment", "environment__site", "scheduled_by"
        ).get(rfc=rfc, uuid=deployment_uuid)
    except (Deployment.DoesNotExist, ValidationError):
        raise Http404("No such deployment") from None


def _context(request, deployment: Deployment) -> dict:
    zone = deployment.environment.site.zone

    def local(value):
        return f"{value.astimezone(zone):%a %-d %b %Y %H:%M:%S %Z}" if value else "—"

    steps = list(deployment.steps.order_by("order", "started_at"))
    live = deployment.state not in states.TERMINAL
    return {
        "d": deployment,
        "rfc": deployment.rfc,
        "steps": steps,
        "live": live,
        "times": {
            "scheduled": local(deployment.scheduled_start),
            "started": local(deployment.started_at),
            "finished": local(deployment.finished_at),
            "next": local(deployment.next_action_at),
        },
        "pipeline": engine.FORWARD,
        "rpo": engine.describe_rpo(deployment.rpo),
        "may_rollback": scheduling.may_roll_back(request.user, deployment),
        "may_cancel": scheduling.may_cancel(request.user, deployment),
    }


@login_required
@require_GET
def deployment_detail(request, uuid, deployment_uuid):
    deployment = _deployment_or_404(request, uuid, deployment_uuid)
    template = "releases/deployment.html#live" if request.htmx else "releases/deployment.html"
    return render(request, template, _context(request, deployment))


def _act(request, uuid, deployment_uuid, action, success: str, next_url):
    """Run a service action on the deployment with the reason given; a refusal re-renders the page."""
    deployment = _deployment_or_404(request, uuid, deployment_uuid)
    try:
        action(request.user, deployment, request.POST.get("reason", ""))
    except REFUSED as exc:
        r = refusal(exc)
        status, message = r.status, r.message
        context = _context(request, deployment)
        context["action_error"] = message
        return render(request, "releases/deployment.html", context, status=status)
    messages.success(request, success)
    return redirect(next_url)


@login_required
@require_POST
def deployment_rollback(request, uuid, deployment_uuid):
    return _act(
        request,
        uuid,
        deployment_uuid,
        scheduling.request_rollback,
        _("Rollback requested: the worker restores the snapshot and the backup at its next step."),
        reverse("releases:deployment", args=[uuid, deployment_uuid]),
    )


@login_required
@require_POST
def deployment_cancel(request, uuid, deployment_uuid):
    return _act(
        request,
        uuid,
        deployment_uuid,
        scheduling.cancel_deployment,
        _("Deployment cancelled."),
        reverse("releases:detail", args=[uuid]),
    )


@login_required
@require_POST
def deploy_now(request, uuid):
    """Promote the RFC's artifact to a DEV or UAT environment now."""
    rfc = rfc_or_404(request.user, uuid)
    environment = (
        Environment.objects.filter(
            pk=request.POST.get("environment", "") or 0, site__in=access.visible_sites(request.user)
        )
        .select_related("site")
        .first()
    )
    if environment is None:
        raise Http404("No such environment")
    try:
        deployment = scheduling.deploy_now(request.user, rfc, environment)
    except REFUSED as exc:
        message = refusal(exc).message
        messages.error(request, message)
        return redirect("releases:detail", rfc.uuid)
    messages.success(
        request,
        _("Deploying %(release)s to %(environment)s now.")
        % {"release": rfc.release, "environment": environment},
    )
    return redirect("releases:deployment", rfc.uuid, deployment.uuid)
