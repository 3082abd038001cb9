"""Approval pages: the approver's queue, the decision page, the email link, absences, the demo mailbox.

The email link (A5): GET and HEAD only show a page and change nothing — mail scanners open
links. Deciding needs the link's approver logged in and a POST with their password.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.timezone import make_aware
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts import lockout
from approvals import services
from approvals.mail import token_hash
from approvals.models import Absence, Approval, EmailLink
from audit.services import record
from core import listing
from core.clientip import client_ip
from core.errors import StateConflict
from core.inputs import check_moment
from core.refusals import REFUSED, refusal
from core.roles import Role
from environments import access
from releases import gates
from workflow import services as wf
from workflow.rows import rfc_cells


def _decision_context(approval: Approval) -> dict:
    rfc = approval.rfc
    shown = gates.evaluate(rfc)
    last_signature, changes = services.changes_since_last_signature(rfc)
    return {
        "approval": approval,
        "rfc": rfc,
        "gates": shown,
        "failing_gates": [g for g in shown if not g.passed],
        "last_signature": last_signature,
        "changes": changes,
        "bookings": list(
            rfc.deployments.filter(state="scheduled").select_related("environment", "environment__site")
        ),
        "rounds": services.rounds_of(rfc, latest=True),
        "impacts": list(rfc.impacts.select_related("site")),
    }


def _errors(exc: ValidationError) -> dict:
    """Field errors by name; errors about the whole form under "general" (templates cannot read __all__)."""
    errors = dict(exc.message_dict) if hasattr(exc, "error_dict") else {"general": exc.messages}
    if "__all__" in errors:
        errors["general"] = errors.pop("__all__")
    return errors


def _approval_queryset():
    return Approval.objects.select_related(
        "rfc", "rfc__release", "rfc__author", "site", "step", "step__round"
    )


QUEUE_PAGE = 25  # rows per page of the queue: two queries (the count, the page) however many wait


def page_links(page, around: int = 2) -> list[int | None]:
    """The page numbers a pager shows: the first, the last and `around` either side of the current
    one; None where numbers are left out."""
    last = page.paginator.num_pages
    shown = sorted({1, last, *range(max(1, page.number - around), min(last, page.number + around) + 1)})
    links: list[int | None] = []
    for number in shown:
        if links and number - (links[-1] or 0) > 1:
            links.append(None)
        links.append(number)
    return links


QUEUE_COLUMNS = (
    "role",
    "rfc",
    "rfc__uuid",
    "rfc__number",
    "rfc__title",
    "rfc__change_class",
    "rfc__high_risk",
    "rfc__risk_level",
    "rfc__emergency",
    "site",
    "site__code",
    "step",
    "step__activated_at",
    "step__round",
    "step__round__purpose",
)


def _queue_rows(approvals) -> list[dict]:
    """The queue's rows as plain values: labels and addresses made once per page (core.listing)."""
    rfc = rfc_cells()
    roles = listing.labels(Role.choices)
    decide = listing.address("approvals:decide", int)
    return [
        {
            **rfc(a.rfc),
            "review": a.step.round.is_review,
            "role": roles.get(a.role, a.role),
            "site": a.site.code,
            "since": a.step.activated_at,
            "decide": decide(a.pk),
        }
        for a in approvals
    ]


@login_required
def queue(request):
    """What waits for the user's signature, oldest first, a page at a time (htmx refreshes the page
    shown)."""
    # Only what a row shows: each further join costs the planner more than the 25 rows cost to read.
    waiting = (
        services.approvals_for(request.user)
        .select_related(None)
        .select_related("rfc", "site", "step__round")
        .only(*QUEUE_COLUMNS)
        .order_by("pk")
    )
    page = Paginator(waiting, QUEUE_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    for key in ("page", "poll"):
        query.pop(key, None)
    template = "approvals/queue.html#queue" if request.htmx else "approvals/queue.html"
    return render(
        request,
        template,
        {
            "items": _queue_rows(page.object_list),
            "page": page,
            "page_links": page_links(page) if page.has_other_pages() else [],
            "query": query.urlencode(),
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def decide(request, pk: int):
    approval = get_object_or_404(_approval_queryset(), pk=pk)
    if not services.visible_to(request.user, approval):
        raise Http404
    return _decide(request, approval, via="portal")


def _decide(request, approval: Approval, via: str, link: EmailLink | None = None):
    context = _decision_context(approval)
    context["link"] = link
    status = 200
    if request.method == "POST":
        decision = request.POST.get("decision", "")
        reason = request.POST.get("reason", "")
        try:
            signature = wf.sign(
                request.user,
                approval,
                decision,
                request.POST.get("password", ""),
                reason,
                via=via,
                link=link,
                otp_code=request.POST.get("otp_code", ""),
            )
        except ValidationError as exc:
            context["errors"] = _errors(exc)
            status = 400
        except REFUSED as exc:
            refused = refusal(exc)
            field = (
                "otp_code"
                if isinstance(exc, services.WrongCode)
                else "password"
                if isinstance(exc, services.WrongPassword)
                else "general"
            )
            context["errors"] = {field: [refused.message]}
            status = refused.status
        else:
            messages.success(
                request,
                _("%(rfc)s: %(meaning)s. Your signature is recorded.")
                % {"rfc": approval.rfc.number, "meaning": signature.meaning},
            )
            return redirect("releases:detail", approval.rfc.uuid)
        context["form"] = {"decision": decision, "reason": reason}
    return render(request, "approvals/decide.html", context, status=status)


# --- The email link ---------------------------------------------------------------------------------
# (status, title, detail); the detail may name %(hours)s, %(owner)s and %(user)s.
LINK_PROBLEMS = {
    "unknown": (
        404,
        gettext_lazy("This approval link is not valid"),
        gettext_lazy("Check that you opened the whole link from the email."),
    ),
    "used": (
        410,
        gettext_lazy("This approval link has been used"),
        gettext_lazy("Each link works once. The RFC page shows the decision."),
    ),
    "expired": (
        410,
        gettext_lazy("This approval link has expired"),
        gettext_lazy(
            "Links expire after %(hours)s hours. Open the RFC in the "
            "portal or wait for the reminder with a new link."
        ),
    ),
    "decided": (
        409,
        gettext_lazy("This approval no longer waits for a decision"),
        gettext_lazy("Someone decided it already, or the RFC was withdrawn."),
    ),
    "stale": (
        409,
        gettext_lazy("The RFC changed after this link was sent"),
        gettext_lazy(
            "Its content is not what you were asked to "
            "approve. A new request follows when it is submitted again."
        ),
    ),
    "other_user": (
        403,
        gettext_lazy("This link was sent to someone else"),
        gettext_lazy(
            "It belongs to %(owner)s; you are logged in as "
            "%(user)s. Log out and log in as %(owner)s, or open your own email."
        ),
    ),
}


@require_http_methods(["GET", "HEAD", "POST"])
def link(request, token: str):
    # Guessing tokens (FAULTS 33) counts like guessing passwords: LOCKOUT_FAILURES unknown links from
    # one address within LOCKOUT_MINUTES lock that address out (audited, as a password lockout is).
    address = client_ip(request)
    try:
        lockout.check(None, address, entry="approval_link")
    except lockout.Locked as locked:
        response = render(
            request,
            "approvals/link_problem.html",
            {
                "title": _("Too many invalid approval links"),
                "detail": _("Approval links from your network address are refused until %(until)s.")
                % {"until": locked.lock.until_text},
            },
            status=429,
        )
        response["Retry-After"] = str(locked.lock.retry_after())
        return response
    found = services.find_link(token_hash(token))
    problem = services.link_problem(found, request.user)
    if problem == "unknown":
        lockout.failed(None, address, entry="approval_link")
    if problem:
        status, title, detail = LINK_PROBLEMS[problem]
        owner = found.user.get_username() if found else ""
        record(
            f"approvals.link.{problem}",
            found.approval if found else None,
            actor=request.user,
            object_type="" if found else "approvals.emaillink",
            object_id="" if found else token_hash(token)[:16],
            after={"method": request.method, "link_owner": owner},
        )
        detail = str(detail) % {
            "hours": settings.APPROVAL_LINK_HOURS,
            "owner": owner,
            "user": request.user.get_username(),
        }
        return render(
            request,
            "approvals/link_problem.html",
            {"title": title, "detail": detail, "rfc": found.approval.rfc if found else None},
            status=status,
        )
    if not request.user.is_authenticated:
        # Straight to the sign-in, which comes back here: no content for an anonymous visitor (a mail
        # scanner), and nothing is consumed until a signature.
        return redirect(f"{reverse('login')}?{urlencode({'next': request.path})}")
    return _decide(request, found.approval, via="email", link=found)


# --- Absences (delegation) -------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def absences(request):
    user = request.user
    is_approver = bool(access.all_roles(user) & services.APPROVER_ROLES)
    context = {"is_approver": is_approver, "errors": {}, "form": {}}
    status = 200
    if request.method == "POST":
        form = request.POST
        delegate = get_user_model().objects.filter(username=form.get("delegate", "")).first()
        try:
            starts_at, ends_at = (
                _local_datetime(form.get("starts_at")),
                _local_datetime(form.get("ends_at")),
            )
            services.set_absence(
                user, delegate=delegate, starts_at=starts_at, ends_at=ends_at, reason=form.get("reason", "")
            )
        except ValidationError as exc:
            context["errors"], context["form"], status = _errors(exc), form, 400
        except PermissionDenied as exc:
            context["errors"], status = {"general": [str(exc)]}, 403
        else:
            messages.success(
                request,
                _("Absence recorded: %(delegate)s signs for you.")
                % {"delegate": delegate.get_full_name() or delegate},
            )
            return redirect("approvals:absences")
    context["absences"] = Absence.objects.filter(user=user).select_related("delegate")
    context["delegations"] = services.active_absences().filter(delegate=user).select_related("user")
    context["candidates"] = services.delegate_candidates(user)
    return render(request, "approvals/absences.html", context, status=status)


def _local_datetime(value: str | None):
    try:
        parsed = parse_datetime(value or "")
    except ValueError:  # well formed but no such day or time, e.g. 2026-13-45T09:00
        parsed = None
    if parsed is None:
        raise ValidationError({"starts_at": _("Give the start and the end as date and time.")})
    check_moment(parsed, "starts_at")
    return parsed if parsed.tzinfo else make_aware(parsed)


@login_required
@require_POST
def cancel_absence(request, pk: int):
    absence = get_object_or_404(Absence, pk=pk, user=request.user)
    try:
        services.cancel_absence(request.user, absence)
    except StateConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Absence cancelled."))
    return redirect("approvals:absences")


# --- The demo mailbox -------------------------------------------------------------
_URL = re.compile(r"(https?://[^\s<>\"]+)")


@login_required
def mailbox(request):
    """Only with DEBUG and only for admins: the mails `make run` wrote to files, newest first, links
    clickable. Everyone's mail is in there, so anyone else gets a 404 (the page is not there for them)."""
    if not settings.DEBUG or not access.can(request.user, "admin_site"):
        raise Http404
    folder = Path(settings.EMAIL_FILE_PATH)
    mails = []
    for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)[:50]:
        for chunk in path.read_text(errors="replace").split("-" * 79):
            if not chunk.strip():
                continue
            message = email.message_from_string(chunk.strip(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            mails.append(
                {
                    "subject": message["subject"],
                    "to": message["to"],
                    "date": message["date"],
                    "body": text,
                    "links": _URL.findall(text),
                }
            )
    return render(request, "approvals/mailbox.html", {"mails": mails, "folder": folder})
