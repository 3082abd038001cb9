"""Account pages: the access review."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_GET

from accounts import review
from audit.services import record
from core import clock
from environments import access


def _reviewed(request, action: str, **after) -> list:
    """The listing, for a person allowed to review access; each look at it is audited."""
    access.require(request.user, "review_access")
    listing = review.rows()
    record(action, actor=request.user, object_type="accounts.review", after={"users": len(listing), **after})
    return listing


@login_required
@require_GET
def review_page(request):
    listing = _reviewed(request, "accounts.review.viewed")
    return render(
        request,
        "accounts/review.html",
        {
            "rows": listing,
            "now": clock.now(),
            "may_grant": access.can(request.user, "admin_site"),
            "time_bound": sum(1 for row in listing for role in row.roles if role.expires_at),
        },
    )


@login_required
@require_GET
def review_csv(request):
    with translation.override(
        None
    ):  # a CSV export is machine-readable: English cells, whatever the page's language
        listing = _reviewed(request, "accounts.review.exported", format="csv")
    response = StreamingHttpResponse(review.export_csv(listing), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="access-review-{clock.now():%Y%m%d-%H%M%S}.csv"'
    response["Cache-Control"] = "no-store"
    return response
