"""The owner's API tokens page: make one (the secret is shown once), see them all, revoke one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import tokens
from accounts.forms import TokenForm
from accounts.models import ApiToken
from core import clock

SHOWN = 100  # the newest tokens listed; older ones are in the admin


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def tokens_page(request):
    form = TokenForm(request.POST if request.method == "POST" else None)
    created = secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            created, secret = tokens.issue(
                request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
            form = TokenForm()
            status = 200
        else:
            status = 400
    now = clock.now()
    rows = [
        (token, token.state(now))
        for token in ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")[:SHOWN]
    ]
    response = render(
        request,
        "accounts/tokens.html",
        {"form": form, "rows": rows, "created": created, "secret": secret, "now": now},
        status=status,
    )
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def revoke_token(request, pk: int):
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk, user=request.user)
    if tokens.revoke(token, actor=request.user, reason="revoked by its owner"):
        messages.success(
            request, _("The token “%(name)s” is revoked; it no longer works.") % {"name": token.name}
        )
    else:
        messages.info(request, _("The token “%(name)s” was revoked already.") % {"name": token.name})
    return redirect("accounts:tokens")
