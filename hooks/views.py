"""A site's webhooks (release managers and admins of the site), their delivery log and a test post;
a person's own chat address."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import record
from core import clock, links
from environments import access
from hooks import delivery
from hooks.forms import ChatEndpointForm, WebhookForm
from hooks.models import ChatEndpoint, Webhook

AUDITED = ["name", "url", "format", "events", "active"]


def _site(user, code: str):
    site = access.visible_site(user, code)
    if site is None or not access.can(user, "manage_webhooks", site):
        raise Http404
    return site


def _hook(user, pk: int) -> Webhook:
    hook = get_object_or_404(Webhook.objects.select_related("site"), pk=pk)
    _site(user, hook.site.code)
    return hook


def _state(hook: Webhook) -> dict:
    return {name: getattr(hook, name) for name in AUDITED}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def site_webhooks(request, code: str):
    site = _site(request.user, code)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.instance.site, form.instance.created_by = site, request.user
            hook = form.save()
            record("hooks.webhook.created", hook, actor=request.user, after=_state(hook))
        messages.success(
            request, _("Webhook “%(name)s” added. Send a test to check the receiver.") % {"name": hook.name}
        )
        return redirect("hooks:detail", hook.pk)
    hooks = Webhook.objects.filter(site=site).order_by("name")
    status = 400 if request.method == "POST" else 200
    return render(request, "hooks/site.html", {"site": site, "hooks": hooks, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def detail(request, pk: int):
    hook = _hook(request.user, pk)
    before = _state(hook)
    form = WebhookForm(request.POST or None, instance=hook)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            hook = form.save()
            record("hooks.webhook.changed", hook, actor=request.user, before=before, after=_state(hook))
        messages.success(request, _("Webhook saved."))
        return redirect("hooks:detail", hook.pk)
    page = Paginator(hook.deliveries.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "hooks/detail.html",
        {"hook": hook, "form": form, "page": page},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def send_test(request, pk: int):
    hook = _hook(request.user, pk)
    data = {
        "event": "webhook.test",
        "label": "Test message",
        "urgent": False,
        "occurred_at": clock.now().isoformat(),
        "summary": f"Test message from Plant Change Control for {hook.site.code} ({hook.name})",
        "url": links.absolute_url(reverse("hooks:detail", args=[hook.pk]), request),
        "rfc": {"number": "", "title": "", "state": "", "release": "—"},
        "site": hook.site.code,
        "deployment": None,
        "actor": request.user.get_username(),
        "data": {},
    }
    with transaction.atomic():
        delivery.queue(url=hook.url, format=hook.format, kind="webhook.test", data=data, webhook=hook)
        record("hooks.webhook.tested", hook, actor=request.user)
    messages.success(request, _("A test message is queued; its outcome shows in the log below in a moment."))
    return redirect("hooks:detail", hook.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def chat(request):
    current = ChatEndpoint.objects.filter(user=request.user).first()
    if request.method == "POST" and request.POST.get("remove"):
        with transaction.atomic():
            if current is not None:
                current.delete()
                record("hooks.chat.removed", request.user, actor=request.user)
        messages.success(request, _("Your chat address is removed: chat notifications come by mail."))
        return redirect("hooks:chat")
    form = ChatEndpointForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.instance.user = request.user
            endpoint = form.save()
            record("hooks.chat.set", request.user, actor=request.user, after={"format": endpoint.format})
        messages.success(request, _("Your chat address is saved."))
        return redirect("hooks:chat")
    return render(
        request,
        "hooks/chat.html",
        {"form": form, "current": current},
        status=400 if request.method == "POST" else 200,
    )
