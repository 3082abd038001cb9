from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from changecontrol import health
from environments import access
from reports import oversight
from workflow.inbox import inbox


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


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says: the portal's mark, not a 404."""
    return redirect(static("favicon.svg"), permanent=True)


@login_required
def home(request):
    """What needs this user now, by role, and what runs where (E9); for an auditor the state of the
    trail and the deviations, for a manager how change is going at their sites."""
    waiting = inbox(request.user)
    return render(
        request,
        "home.html",
        {
            **vars(waiting),
            "roles": access.role_labels(request.user),
            "oversight": oversight.auditor_home(request.user)
            if access.can(request.user, "read_audit")
            else None,
            "summary": oversight.manager_summary(request.user),
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
