from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from changecontrol import health
from core.roles import Role
from environments import access
from environments.models import Environment
from releases.services import FILERS


@never_cache
@require_GET
def healthz(request):
    database = health.database_status()
    broker = health.broker_status()
    ok = database == "ok" and broker == "ok"
    return JsonResponse(
        {
            "status": "ok" if ok else "degraded",
            "database": database,
            "broker": broker,
            "version": settings.PORTAL_VERSION,
        },
        status=200 if ok else 503,
    )


@login_required
def home(request):
    """What needs this user now, by role, and what runs where (E9)."""
    from django.db.models import Exists, OuterRef, Prefetch

    from approvals.services import approvals_for
    from environments.models import TIER_ORDER
    from releases.models import Impact, UatSignoff
    from releases.services import visible_rfcs
    from releases.states import OPEN_STATES, RfcState

    user = request.user
    environments = sorted(
        Environment.objects.filter(site__in=access.visible_sites(user)).select_related("site"),
        key=lambda env: (env.site.code, TIER_ORDER[env.tier]),
    )
    rfcs = (
        visible_rfcs(user)
        .select_related("release")
        .prefetch_related(Prefetch("impacts", queryset=Impact.objects.select_related("site")))
    )
    mine = list(rfcs.filter(author=user, state__in=OPEN_STATES).order_by("-updated_at")[:10])
    key_user_sites = [
        site for site in access.visible_sites(user) if access.has_role(user, Role.KEY_USER, site)
    ]
    to_sign_off = []
    if key_user_sites:
        live_signoff = UatSignoff.objects.filter(
            rfc=OuterRef("rfc"),
            site=OuterRef("site"),
            voided_at__isnull=True,
            release=OuterRef("rfc__release"),
        )
        waiting = (
            Impact.objects.filter(site__in=key_user_sites, rfc__state=RfcState.DRAFT)
            .exclude(rfc__author=user)
            .exclude(Exists(live_signoff))
            .values("rfc")
        )
        to_sign_off = list(rfcs.filter(pk__in=waiting).order_by("-created_at")[:10])
    is_approver = bool(access.all_roles(user) & access.APPROVER_ROLES)
    to_approve = list(approvals_for(user).order_by("pk")[:10]) if is_approver else []
    to_schedule, deployments = [], []
    if access.has_any_role(user, [Role.RELEASE_MANAGER, Role.ADMIN]):
        to_schedule = list(rfcs.filter(state=RfcState.APPROVED).order_by("-updated_at")[:10])
        from deployments.models import Deployment
        from deployments.states import ACTIVE as ACTIVE_DEPLOYMENT_STATES

        deployments = [
            (d, f"{d.scheduled_start.astimezone(d.environment.site.zone):%a %-d %b %H:%M %Z}")
            for d in Deployment.objects.filter(rfc__in=visible_rfcs(user), state__in=ACTIVE_DEPLOYMENT_STATES)
            .select_related("rfc", "environment", "environment__site")
            .order_by("scheduled_start")[:10]
        ]
    return render(
        request,
        "home.html",
        {
            "environments": environments,
            "roles": access.role_labels(user),
            "mine": mine,
            "to_sign_off": to_sign_off,
            "is_key_user": bool(key_user_sites),
            "to_approve": to_approve,
            "is_approver": is_approver,
            "to_schedule": to_schedule,
            "deployments": deployments,
            "may_file": access.has_any_role(user, FILERS),
        },
    )


def error_404(request, exception=None):
    return render(request, "errors/404.html", status=404)


def error_403(request, exception=None):
    return render(request, "errors/403.html", {"message": str(exception or "")}, status=403)


def error_500(request):
    return render(request, "errors/500.html", status=500)


def error_400(request, exception=None):
    return render(request, "errors/400.html", status=400)
