"""The audit trail for admins and auditors: filter, keyset pages, export, verify.

Reading the trail is itself recorded (Annex 11 §9): every page, export and verification request.
"""

from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from audit import actions, trail
from audit.models import AuditEvent
from audit.services import record
from core import clock
from environments import access


def _int(value):
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(slots=True)
class Row:
    """One event as the trail page shows it: every value already a display string, so 50 rows render
    as plain substitutions (the per-row time zone switch, date and truncation filters cost more than
    the page's queries)."""

    seq: int
    when: str  # UTC
    actor: str
    label: str
    action: str
    object_id: str
    object_repr: str
    site: str
    reason: str
    change: str  # "before\n→ after", or "" when the event records neither


def _cut(text: str, length: int) -> str:
    """Django's truncatechars: at most `length` characters, the last an ellipsis when cut."""
    return text if len(text) <= length else text[: length - 1] + "…"


def rows(events) -> list[Row]:
    labels: dict[str, str] = {}
    shown = []
    for e in events:
        if e.action not in labels:
            labels[e.action] = actions.label(e.action)
        shown.append(
            Row(
                seq=e.seq,
                when=e.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                actor=e.actor_name or "—",
                label=labels[e.action],
                action=actions.canonical(e.action),
                object_id=e.object_id or "—",
                object_repr=_cut(e.object_repr or "", 60),
                site=e.site_code or "",
                reason=_cut(e.reason or "", 200),
                change=f"{e.before or '—'}\n→ {e.after or '—'}" if e.before or e.after else "",
            )
        )
    return shown


def _last_verification():
    return AuditEvent.objects.filter(action="audit.chain.verified").order_by("-seq").first()


@login_required
@require_GET
def event_list(request):
    access.require(request.user, "read_audit")
    filters = trail.Filters.from_query(request.GET)
    errors = filters.errors()
    before, after = _int(request.GET.get("before")), _int(request.GET.get("after"))
    events, older, newer = ([], None, None) if errors else trail.page(filters, before=before, after=after)
    record(
        "audit.trail.read",
        actor=request.user,
        object_type="audit.trail",
        after={"filters": filters.as_recorded(), "before": before, "after": after, "shown": len(events)},
    )
    query = urlencode(filters.as_dict())
    template = "audit/list.html#results" if request.htmx else "audit/list.html"
    return render(
        request,
        template,
        {
            "events": events,
            "rows": rows(events),
            "older": older,
            "newer": newer,
            "filters": filters,
            "errors": errors,
            "query": query,
            "last_verification": _last_verification(),
            "heads": trail.published_heads()[-3:],
        },
        status=400 if errors else 200,
    )


@login_required
@require_GET
def export(request, fmt: str):
    """CSV or JSON Lines of the filtered selection, streamed in constant memory."""
    access.require(request.user, "read_audit")
    filters = trail.Filters.from_query(request.GET)
    if filters.errors():
        return render(request, "errors/400.html", status=400)
    record(
        "audit.trail.exported",
        actor=request.user,
        object_type="audit.trail",
        after={"filters": filters.as_recorded(), "format": fmt},
    )
    stamp = f"{clock.now():%Y%m%d-%H%M%S}"
    if fmt == "csv":
        response = StreamingHttpResponse(trail.export_csv(filters), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.csv"'
    else:
        response = StreamingHttpResponse(trail.export_jsonl(filters), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.jsonl"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def verify_now(request):
    """Verification on demand: the worker recomputes the whole chain and publishes the head."""
    from audit.tasks import verify_chain

    access.require(request.user, "read_audit")
    record("audit.chain.verification_requested", actor=request.user, object_type="audit.chain")
    try:
        verify_chain.delay()
    except Exception:  # the broker is down: verify here, the trail is the truth either way
        verify_chain()
    messages.success(
        request,
        _("Verification started: the result appears here when the worker has recomputed the chain."),
    )
    return redirect("audit:list")
