"""Commenting on the RFC page (the form sits under its timeline), editing one's own comment, and a
comment's history."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from discussion import services
from discussion.models import Comment
from releases.services import rfc_or_404


@login_required
@require_POST
def add(request, uuid):
    rfc = rfc_or_404(request.user, uuid)
    try:
        comment, mentions = services.add(request.user, rfc, request.POST.get("body", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.message_dict.get("body", exc.messages)))
        return redirect(reverse("releases:detail", args=[rfc.uuid]) + "#comment-form")
    told = ", ".join(u.get_full_name() or u.username for u in mentions.told)
    parts = [_("Comment added.")]
    if told:
        parts.append(_("Told: %(names)s.") % {"names": told})
    if mentions.not_told:
        names = ", ".join("@" + n for n in mentions.not_told)
        parts.append(_("Not notified (no such person can see this RFC): %(names)s.") % {"names": names})
    messages.success(request, " ".join(parts))
    return redirect(reverse("releases:detail", args=[rfc.uuid]) + f"#comment-{comment.pk}")


def _comment(request, uuid, pk: int) -> Comment:
    rfc = rfc_or_404(request.user, uuid)
    return get_object_or_404(Comment.objects.select_related("author", "rfc"), pk=pk, rfc=rfc)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def edit(request, uuid, pk: int):
    comment = _comment(request, uuid, pk)
    if comment.author_id != request.user.pk:
        raise PermissionDenied(_("Only its author may edit a comment."))
    error = ""
    if request.method == "POST":
        try:
            services.edit(request.user, comment, request.POST.get("body", ""))
        except ValidationError as exc:
            error = " ".join(exc.message_dict.get("body", exc.messages))
        else:
            messages.success(request, _("Comment saved; the earlier text stays in its history."))
            return redirect(reverse("releases:detail", args=[comment.rfc.uuid]) + f"#comment-{comment.pk}")
    return render(
        request,
        "discussion/edit.html",
        {"comment": comment, "body": request.POST.get("body", comment.body), "error": error},
        status=400 if error else 200,
    )


@login_required
def history(request, uuid, pk: int):
    comment = _comment(request, uuid, pk)
    return render(
        request,
        "discussion/history.html",
        {"comment": comment, "revisions": comment.revisions.select_related("edited_by")},
    )
