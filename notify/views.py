"""A person's notification settings, and following or muting one RFC."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import record
from environments import access
from notify import watchers
from notify.events import KINDS
from notify.models import Channel, Preference
from releases.services import rfc_or_404

CHOICES = [
    (Channel.MAIL, gettext_lazy("Mail")),
    (Channel.CHAT, gettext_lazy("Chat")),
    (Channel.NONE, gettext_lazy("Nothing")),
]


def _current(user) -> dict[str, str]:
    return dict(Preference.objects.filter(user=user).values_list("kind", "channel"))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def settings_page(request):
    current = _current(request.user)
    errors: list[str] = []
    if request.method == "POST":
        chosen = {}
        for key in KINDS:
            value = request.POST.get(key, current.get(key, Channel.MAIL))
            if value not in Channel.values:
                errors.append(_("%(kind)s: choose mail, chat or nothing.") % {"kind": KINDS[key].label})
            chosen[key] = value
        if not errors:
            changed = {key: value for key, value in chosen.items() if value != current.get(key, Channel.MAIL)}
            with transaction.atomic():
                for key, value in changed.items():
                    Preference.objects.update_or_create(
                        user=request.user, kind=key, defaults={"channel": value}
                    )
                if changed:
                    record(
                        "notify.preferences.changed",
                        request.user,
                        actor=request.user,
                        before={key: current.get(key, Channel.MAIL) for key in changed},
                        after=changed,
                    )
            messages.success(request, _("Your notification settings are saved."))
            return redirect("notify:settings")
        current = chosen
    rows = [
        {"key": key, "kind": kind, "channel": current.get(key, Channel.MAIL)} for key, kind in KINDS.items()
    ]
    return render(
        request,
        "notify/settings.html",
        {
            "rows": rows,
            "choices": CHOICES,
            "errors": errors,
            "webhook_sites": [
                site
                for site in access.visible_sites(request.user)
                if access.can(request.user, "manage_webhooks", site)
            ],
        },
        status=400 if errors else 200,
    )


ACTIONS = {
    "watch": (watchers.watch, "notify.rfc.watched", gettext_lazy("You now follow %(number)s.")),
    "unwatch": (watchers.unwatch, "notify.rfc.unwatched", gettext_lazy("You no longer follow %(number)s.")),
    "mute": (
        watchers.mute,
        "notify.rfc.muted",
        gettext_lazy("%(number)s is muted: you hear of it only if a rollback fails."),
    ),
    "unmute": (watchers.unmute, "notify.rfc.unmuted", gettext_lazy("%(number)s is no longer muted.")),
}


@login_required
@require_POST
def follow(request, uuid, action: str):
    rfc = rfc_or_404(request.user, uuid)
    change, event, message = ACTIONS[action]
    with transaction.atomic():
        if change(request.user, rfc):
            record(event, rfc, actor=request.user)
    messages.success(request, str(message) % {"number": rfc.number})
    return redirect("releases:detail", rfc.uuid)
