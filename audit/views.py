from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from audit.models import AuditEvent
from changecontrol import access


@login_required
def event_list(request):
    """The trail, newest first. Filtering, export and keyset pagination come with issue 8."""
    access.require(request.user, "read_audit")
    queryset = AuditEvent.objects.order_by("-seq")
    action = request.GET.get("action", "").strip()
    if action:
        queryset = queryset.filter(action__startswith=action)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    return render(request, "audit/list.html", {"page": page, "action": action})
