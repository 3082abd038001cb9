"""Saving and deleting the RFC list's filters (workflow/saved_filters.py): small POST-only pages that
return to the list with a message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from workflow import saved_filters


@login_required
@require_POST
def save_filter(request):
    params = QueryDict(request.POST.get("query", ""))
    back = f"{reverse('releases:list')}?{saved_filters.kept_query(params)}"
    try:
        saved = saved_filters.save(
            request.user,
            request.POST.get("name", ""),
            params,
            shared=request.POST.get("shared") in ("on", "true", "1"),
            request=request,
        )
    except ValidationError as refused:
        for text in refused.messages:
            messages.error(request, text)
        return redirect(back)
    messages.success(
        request,
        (
            _("Saved the filter “%(name)s” for everyone.")
            if saved.shared
            else _("Saved the filter “%(name)s”.")
        )
        % {"name": saved.name},
    )
    return redirect(saved_filters.address(saved))


@login_required
@require_POST
def delete_filter(request, pk: int):
    saved_filters.delete(request.user, pk)
    messages.success(request, _("Deleted the filter."))
    return redirect(reverse("releases:list"))
