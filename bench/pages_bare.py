"""The bare views of bench/pages_bench.py (mounted by bench/pages_urls.py, never in the product): each
reads the rows its page shows with plain queries and renders them with a minimal template, no
base.html, no navigation, no permission rules beyond sign-in. What a page costs beyond its bare view
is the cost of the page itself. Also the middleware that puts each response's query count in a header.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Prefetch, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template import engines

from approvals.models import Approval, ApprovalState
from audit.models import AuditEvent
from core import clock
from deployments.models import Deployment
from environments import access
from releases.models import Impact, Rfc
from releases.states import OPEN_STATES, RfcState

ROWS = 25


class QueryCountMiddleware:
    """`X-Queries`: the statements this request sent to the database (all middleware included)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = [0]

        def counting(execute, sql, params, many, context):
            count[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counting):
            response = self.get_response(request)
        response["X-Queries"] = str(count[0])
        return response


_TABLE = engines["django"].from_string(
    "<!doctype html><html lang=en><title>bare</title><table>"
    "{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}"
    "</table></html>"
)


# The same rows inside the portal's layout (`?base=1`): what base.html and its context cost by itself.
_IN_BASE = engines["django"].from_string(
    '{% extends "base.html" %}{% block title %}bare{% endblock %}{% block content %}<table>'
    "{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}"
    "</table>{% endblock %}"
)


def _render(rows, request=None) -> HttpResponse:
    if request is not None and request.GET.get("base"):
        return HttpResponse(_IN_BASE.render({"rows": rows}, request))
    return HttpResponse(_TABLE.render({"rows": rows}))


def _rfcs():
    return Rfc.objects.select_related("release", "author").prefetch_related(
        Prefetch("impacts", queryset=Impact.objects.select_related("site"))
    )


def _rfc_row(rfc) -> list:
    return [
        rfc.number,
        rfc.title,
        rfc.get_state_display(),
        rfc.release.version,
        rfc.author.get_username(),
        ", ".join(i.site.code for i in rfc.impacts.all()),
        rfc.created_at,
    ]


def _pending(user):
    roles = [r.value for r in access.all_roles(user)]
    return (
        Approval.objects.filter(state=ApprovalState.PENDING, role__in=roles)
        .exclude(rfc__author=user)
        .select_related("rfc", "rfc__release", "site", "step")
        .order_by("pk")
    )


def _approval_row(a) -> list:
    return [
        a.rfc.number,
        a.rfc.title,
        a.rfc.change_class,
        a.get_role_display(),
        a.site.code,
        a.step.activated_at,
    ]


@login_required
def home(request):
    user = request.user
    rows = [
        _rfc_row(r) for r in _rfcs().filter(author=user, state__in=OPEN_STATES).order_by("-updated_at")[:10]
    ]
    rows += [_approval_row(a) for a in _pending(user)[:10]]
    rows += [_rfc_row(r) for r in _rfcs().filter(state=RfcState.APPROVED).order_by("-updated_at")[:10]]
    return _render(rows, request)


@login_required
def rfc_list(request):
    return _render([_rfc_row(r) for r in _rfcs().order_by("-created_at", "-id")[:ROWS]], request)


@login_required
def rfc_page(request, uuid):
    """The RFC page's bare view: every kind of row the page shows, each read with a plain query: the
    RFC, its impacts, evidence, UAT sign-offs, comments, waivers and check runs, the approval chain
    (rounds, steps, approvals, signatures), its bookings, the target sites' environments and what they
    run of the release's product, the risk questions, its audit events, and the other open RFCs that
    share an item at one of its sites (the first ten, how many, their bookings). What the page costs
    beyond this is its rules and its rendering, not its reading."""
    from approvals.models import ApprovalRound, ApprovalStep, Signature
    from deployments.models import CheckRun
    from discussion.models import Comment
    from environments.models import Environment, ProductVersion
    from releases.models import Evidence, GateWaiver, ImpactItem, RiskQuestion, UatSignoff, item_keys

    rfc = get_object_or_404(_rfcs(), uuid=uuid)
    impacts = list(rfc.impacts.all())
    sites = [i.site_id for i in impacts]
    rows = [_rfc_row(rfc)]
    rows += [[i.site.code, i.lines, i.modules, i.interfaces] for i in impacts]
    rows += [
        [e.original_name, e.kind, e.uploaded_by.get_username()]
        for e in Evidence.objects.filter(rfc=rfc).select_related("uploaded_by")
    ]
    rows += [
        [s.site.code, s.signed_by.get_username(), s.signed_at]
        for s in UatSignoff.objects.filter(rfc=rfc).select_related("site", "signed_by")
    ]
    rows += [
        [c.author.get_username(), c.created_at, c.body]
        for c in Comment.objects.filter(rfc=rfc).select_related("author")
    ]
    rows += [[w.gate, w.waived_at, w.reason] for w in GateWaiver.objects.filter(rfc=rfc)]
    rows += [[c.kind, c.state, c.created_at] for c in CheckRun.objects.filter(rfc=rfc)]
    rows += [[r.number, r.state, r.content_hash] for r in ApprovalRound.objects.filter(rfc=rfc)]
    rows += [[s.order, s.state, s.roles] for s in ApprovalStep.objects.filter(round__rfc=rfc)]
    rows += [_approval_row(a) for a in Approval.objects.filter(rfc=rfc).select_related("rfc", "site", "step")]
    rows += [[s.printed_name, s.signed_at, s.meaning] for s in Signature.objects.filter(rfc=rfc)]
    rows += [
        [d.environment, d.get_state_display(), d.scheduled_start, d.scheduled_end]
        for d in rfc.deployments.select_related("environment", "environment__site")
    ]
    rows += [
        [e.site.code, e.tier, e.fingerprint_at]
        for e in Environment.objects.filter(site_id__in=sites).select_related("site")
    ]
    rows += [
        [v.environment_id, v.product, v.version]
        for v in ProductVersion.objects.filter(environment__site_id__in=sites, product=rfc.release.product)
    ]
    rows += [[q.key, q.text] for q in RiskQuestion.objects.filter(active=True)]
    rows += [
        [e.seq, e.occurred_at, e.actor_name, e.action, e.object_repr]
        for e in AuditEvent.objects.filter(object_type="releases.rfc", object_id=rfc.number).order_by("seq")
    ]
    # The neighbours: the first ten open RFCs naming one of this RFC's items at its sites, and how many.
    wanted = Q(pk__in=[])
    for impact in impacts:
        for kind, key in item_keys(impact.lines, impact.modules, impact.interfaces):
            wanted |= Q(site_id=impact.site_id, kind=kind, key=key)
    shared = ImpactItem.objects.filter(wanted, rfc__state__in=OPEN_STATES).exclude(rfc=rfc).values("rfc_id")
    others = list(Rfc.objects.filter(pk__in=shared).order_by("number")[:10])
    rows += [[r.number, r.title, r.state] for r in others]
    rows += [[shared.distinct().count()]]
    rows += [
        [d.rfc_id, d.environment_id, d.scheduled_start] for d in Deployment.objects.filter(rfc__in=others)
    ]
    return _render(rows, request)


@login_required
def rfc_page_four_kinds(request, uuid):
    """Four of the fourteen kinds of rows the RFC page shows: the RFC, its approvals, bookings and
    audit events. The benchmark's bare view of the RFC page before v0.42.6, kept for comparison."""
    rfc = get_object_or_404(_rfcs(), uuid=uuid)
    rows = [_rfc_row(rfc)]
    rows += [_approval_row(a) for a in Approval.objects.filter(rfc=rfc).select_related("rfc", "site", "step")]
    rows += [
        [d.environment, d.get_state_display(), d.scheduled_start, d.scheduled_end]
        for d in rfc.deployments.select_related("environment", "environment__site")
    ]
    rows += [
        [e.seq, e.occurred_at, e.actor_name, e.action, e.object_repr]
        for e in AuditEvent.objects.filter(object_type="releases.rfc", object_id=rfc.number).order_by("seq")
    ]
    return _render(rows, request)


@login_required
def queue(request):
    return _render([_approval_row(a) for a in _pending(request.user)[:ROWS]], request)


@login_required
def calendar_month(request):
    first = clock.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = first - timedelta(days=7)  # the month view's weeks start before the 1st and end after
    end = first + timedelta(days=42)
    rows = [
        [d.rfc.number, d.rfc.title, d.environment, d.get_state_display(), d.scheduled_start, d.scheduled_end]
        for d in Deployment.objects.filter(scheduled_start__gte=start, scheduled_start__lt=end)
        .select_related("rfc", "environment", "environment__site")
        .order_by("scheduled_start")
    ]
    return _render(rows, request)


@login_required
def audit(request):
    events = AuditEvent.objects.order_by("-seq")
    if request.GET.get("before"):
        events = events.filter(seq__lt=int(request.GET["before"]))
    return _render(
        [
            [
                e.seq,
                e.occurred_at,
                e.actor_name,
                e.action,
                e.object_type,
                e.object_id,
                e.object_repr,
                e.site_code,
            ]
            for e in events[:50]
        ],
        request,
    )


@login_required
def api_rfcs(request):
    rows = [
        {
            "uuid": str(r.uuid),
            "number": r.number,
            "title": r.title,
            "state": r.state,
            "release": r.release.version,
            "author": r.author.get_username(),
            "sites": [i.site.code for i in r.impacts.all()],
            "created_at": r.created_at.isoformat(),
        }
        for r in _rfcs().order_by("-created_at", "-id")[:50]
    ]
    return JsonResponse({"count": len(rows), "results": rows})
