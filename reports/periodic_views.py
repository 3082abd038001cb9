"""The periodic review pages (reports/periodic.py): draw one up for a period, read it, sign it,
download it as PDF. Auditors and admins only."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import clock
from core.errors import StateConflict
from environments import access
from reports import periodic
from reports.models import PeriodicReview


def _review(user, pk: int) -> PeriodicReview:
    access.require(user, "read_audit")
    review = PeriodicReview.objects.select_related("created_by", "signed_by").filter(pk=pk).first()
    if review is None:
        raise Http404("No such periodic review.")
    return review


def _errors(refused: ValidationError) -> list[str]:
    return (
        [m for messages_ in refused.message_dict.values() for m in messages_]
        if hasattr(refused, "error_dict")
        else list(refused.messages)
    )


@login_required
@require_http_methods(["GET", "POST"])
def review_list(request):
    access.require(request.user, "read_audit")
    today = clock.now().date()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    form = {
        "since": request.POST.get("since", f"{last_month_end.replace(day=1):%Y-%m-%d}"),
        "until": request.POST.get("until", f"{last_month_end:%Y-%m-%d}"),
        "site": request.POST.get("site", ""),
    }
    errors: list[str] = []
    if request.method == "POST":
        try:
            review = periodic.create(request.user, form["since"], form["until"], form["site"])
        except ValidationError as refused:
            errors = _errors(refused)
        else:
            messages.success(request, _("The periodic review is drawn up: read it, then sign it."))
            return redirect(reverse("audit:periodic_review", args=[review.pk]))
    return render(
        request,
        "audit/periodic_list.html",
        {
            "reviews": PeriodicReview.objects.select_related("created_by", "signed_by")[:50],
            "form": form,
            "errors": errors,
            "sites": access.visible_sites(request.user).order_by("code"),
        },
        status=400 if errors else 200,
    )


@login_required
@require_GET
def review_detail(request, pk: int):
    review = _review(request.user, pk)
    return render(
        request, "audit/periodic_detail.html", {"review": review, "c": review.content, "errors": []}
    )


@login_required
@require_POST
def review_sign(request, pk: int):
    review = _review(request.user, pk)
    try:
        periodic.sign(
            request.user,
            review,
            request.POST.get("conclusion", ""),
            request.POST.get("password", ""),
            request.POST.get("otp_code", ""),
        )
    except (ValidationError, StateConflict, PermissionDenied) as refused:
        errors = _errors(refused) if isinstance(refused, ValidationError) else [str(refused)]
        return render(
            request,
            "audit/periodic_detail.html",
            {
                "review": review,
                "c": review.content,
                "errors": errors,
                "conclusion": request.POST.get("conclusion", ""),
            },
            status=409 if isinstance(refused, StateConflict) else 400,
        )
    messages.success(request, _("You signed the periodic review."))
    return redirect(reverse("audit:periodic_review", args=[review.pk]))


@login_required
@require_GET
def review_pdf(request, pk: int):
    review = _review(request.user, pk)
    response = HttpResponse(periodic.pdf(review), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="periodic-review-{review.since:%Y%m%d}-{review.until:%Y%m%d}.pdf"'
    )
    return response
