"""The people sink: each person the recipients table names is told on the channel they chose.

Runs inside the transaction of the act (`notify.events.emit`): the mail rows (outbox) and notices are
written with it, so a notification exists if and only if the act committed, and is delivered after the
commit with retries. Mutes and "nothing" are honoured, except for urgent kinds (a failed rollback),
which always reach people by mail: a plant cannot opt out of being told its line may be down.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from accounts.language import language_for
from core import links
from notify import recipients, watchers
from notify.events import CHANNELS, Event, sink
from notify.models import Channel, Notice, Preference
from outbox import compose
from outbox import services as outbox

# Why a person is told, as the mail names it ("You receive this as author, watchers of …").
AUDIENCES = {
    recipients.AUTHOR: pgettext_lazy("notification audience", "author"),
    recipients.APPROVERS: pgettext_lazy("notification audience", "approvers"),
    recipients.RELEASE_MANAGERS: pgettext_lazy("notification audience", "release managers"),
    recipients.WATCHERS: pgettext_lazy("notification audience", "watchers"),
    recipients.MENTIONED: pgettext_lazy("notification audience", "mentioned"),
}


def channels_for(user_ids, kind: str) -> dict[int, str]:
    rows = Preference.objects.filter(user_id__in=user_ids, kind=kind).values_list("user_id", "channel")
    return dict(rows)


def target_url(event: Event) -> tuple[str, str]:
    """(address, label) of the thing to do or to look at."""
    rfc = event.rfc
    if event.deployment is not None:
        path = reverse("releases:deployment", args=[rfc.uuid, event.deployment.uuid])
        return links.absolute_url(path), _("Open the deployment")
    path = reverse("releases:detail", args=[rfc.uuid])
    if event.key == "review.due":
        return links.absolute_url(path) + "#review", _("Write the review")
    if event.key.startswith("comment."):
        return links.absolute_url(path) + "#timeline", _("Read the comment")
    if event.key in ("rfc.rejected", "rfc.changes_requested"):
        return links.absolute_url(path), _("Mend the RFC")
    return links.absolute_url(path), _("Open the RFC")


def summary(event: Event) -> str:
    """One line for subjects and chat: what happened, where."""
    if event.deployment is not None:
        return _("%(event)s on %(environment)s") % {
            "event": event.kind.label,
            "environment": event.deployment.environment,
        }
    return str(event.kind.label)


def _facts(event: Event) -> list[tuple[str, str]]:
    rfc = event.rfc
    facts = [("RFC", f"{rfc.number} {rfc.title}"), (_("Release"), str(rfc.release))]
    if event.deployment is not None:
        facts.append((_("Environment"), str(event.deployment.environment)))
        facts.append((_("State"), event.deployment.get_state_display()))
    if event.actor is not None:
        facts.append((_("By"), event.actor.get_full_name() or event.actor.get_username()))
    labels = {
        "reason": _("Reason"),
        "question": _("Question"),
        "rpo": _("Data kept"),
        "gate": _("Gate"),
        "start": _("Window opens"),
        "excerpt": _("Comment"),
    }
    facts += [(label, str(event.data[key])) for key, label in labels.items() if event.data.get(key)]
    return facts


def _mail(user, event: Event, audiences: list[str]) -> int:
    """Written in the recipient's own language (their choice, else their browser's)."""
    with translation.override(language_for(user)):
        return _mail_in_language(user, event, audiences)


def _mail_in_language(user, event: Event, audiences: list[str]) -> int:
    rfc = event.rfc
    url, action = target_url(event)
    urgent = _("[URGENT]") + " " if event.kind.urgent else ""
    subject = f"{urgent}[{rfc.number}] {rfc.title} — {summary(event)}"
    text, html = compose.render(
        "notify/mail.html",
        {
            "user": user,
            "event": event,
            "headline": summary(event),
            "facts": _facts(event),
            "url": url,
            "action": action,
            "why": ", ".join(str(AUDIENCES.get(a, a)) for a in audiences),
            "settings_url": links.absolute_url(reverse("notify:settings")),
        },
    )
    domain = links.stable_host()
    return outbox.queue(
        to=user.email,
        subject=subject,
        body=text,
        html_body=html,
        headers=compose.headers(compose.thread_id("rfc", str(rfc.uuid), domain), domain),
        kind=f"notify.{event.key}",
        about=rfc,
        from_email=compose.sender(),
    ).pk


@sink
def tell_people(event: Event) -> None:
    found = recipients.people(event)
    if not found:
        return
    muted = watchers.muted_ids(event.rfc)
    chosen = channels_for(found, event.key)
    notices = []
    for user_id, (user, audiences) in found.items():
        channel = chosen.get(user_id, Channel.MAIL)
        if event.kind.urgent:
            channel = channel if channel == Channel.CHAT and "chat" in CHANNELS else Channel.MAIL
        elif user_id in muted or channel == Channel.NONE:
            continue
        if channel == Channel.CHAT and "chat" in CHANNELS and CHANNELS["chat"](user, event):
            notices.append(
                Notice(kind=event.key, rfc=event.rfc, user=user, channel=channel, audiences=audiences)
            )
            continue
        if not user.email:
            continue
        mail_id = _mail(user, event, audiences)
        notices.append(
            Notice(
                kind=event.key,
                rfc=event.rfc,
                user=user,
                channel=Channel.MAIL,
                audiences=audiences,
                mail_id=mail_id,
            )
        )
    Notice.objects.bulk_create(notices)
