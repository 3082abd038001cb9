"""Approval emails (A5): requests, reminders, escalations — each queued once.

The database decides what is due; a beat sweep and an on-commit nudge only run these functions.
Two beats or a duplicate delivery find nothing left to claim (CELERY.md: duplicate delivery).
Each mail is a row of the outbox, written in the sweep's transaction and delivered after it commits,
each on its own with retries (outbox.services): the audit says "queued", and an approval counts as
notified once a request mail for it was actually delivered (`on_mail_sent`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from accounts.language import language_for
from approvals.models import Approval, ApprovalState, EmailLink
from approvals.services import active_absences, escalation_delay, holders, reminder_delay
from audit.services import record
from core import clock
from core.links import absolute_url, base_url, stable_host
from core.roles import Role
from outbox import compose
from outbox import services as outbox
from releases import gates

BATCH = 50
REQUEST, REMINDER, ESCALATION = "approvals.request", "approvals.reminder", "approvals.escalation"


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_link(approval: Approval, user, purpose: str = "request") -> str:
    """A fresh single-use link for one approver: 256 random bits, only the hash is stored."""
    raw = secrets.token_urlsafe(32)
    now = clock.now()
    EmailLink.objects.create(
        approval=approval,
        user=user,
        token_hash=token_hash(raw),
        content_hash=approval.step.round.content_hash,
        purpose=purpose,
        created_at=now,
        expires_at=now + timedelta(hours=settings.APPROVAL_LINK_HOURS),
    )
    # Built from the configured base URL, never from a request's Host header.
    return absolute_url(reverse("approvals:link", args=[raw]))


def recipients(approval: Approval) -> list[tuple[object, object | None]]:
    """(user, on_behalf_of) for everyone who may sign: holders of the role at the site, minus the
    author and UAT signers (A6), plus the delegate of a holder who is away."""
    rfc = approval.rfc
    excluded = {rfc.author_id, *rfc.signoffs.values_list("signed_by_id", flat=True)}
    people = [user for user in holders(Role(approval.role), approval.site) if user.pk not in excluded]
    result = [(user, None) for user in people]
    away = {a.user_id: a for a in active_absences().filter(user__in=people).select_related("delegate")}
    named = {user.pk for user in people}
    for absence in away.values():
        if absence.delegate_id not in excluded and absence.delegate_id not in named:
            result.append((absence.delegate, absence.user))
            named.add(absence.delegate_id)
    return result


def _send(subject: str, template: str, to, context: dict, *, kind: str, about: Approval) -> int:
    """Queued in the transaction that issued its link (a mail never carries a link that a rollback
    took back) and delivered once it commits. Returns the outbox row's id."""
    body = render_to_string(template, {**context, "site_url": base_url()})
    domain = stable_host()
    return outbox.queue(
        to=to,
        subject=subject,
        body=body,
        html_body=compose.html_from_text(body),
        headers=compose.headers(compose.thread_id("rfc", str(about.rfc.uuid), domain), domain),
        from_email=compose.sender(),
        kind=kind,
        about=about,
    ).pk


def after_commit(send) -> None:
    """Deliver right after the sweep's transaction commits (the sweep runs on a worker), besides the
    worker the outbox wakes: whoever claims a mail first sends it."""
    transaction.on_commit(send)


def on_mail_sent(sender, mail, **kwargs) -> None:
    """An approval is notified when a request mail for it has left, not when it was queued."""
    if mail.kind == REQUEST and mail.object_type == "approvals.approval":
        Approval.objects.filter(pk=mail.object_pk, notified_at__isnull=True).update(notified_at=mail.sent_at)


def _context(approval: Approval) -> dict:
    rfc = approval.rfc
    return {
        "approval": approval,
        "rfc": rfc,
        "gates": gates.evaluate(rfc),
        "rfc_url": absolute_url(reverse("releases:detail", args=[rfc.uuid])),
    }


def _tag(approval: Approval) -> str:
    """The subject's tag: emergency changes and reviews are marked everywhere (W6)."""
    if approval.step.round.is_review:
        return gettext("[Review]")
    return gettext("[EMERGENCY approval]") if approval.rfc.emergency else gettext("[Approval]")


def _claimed(queryset, **changes) -> list[Approval]:
    """Lock due rows no one else holds, mark them done and return them (same transaction)."""
    rows = list(
        queryset.select_for_update(skip_locked=True, of=("self",)).select_related(
            "rfc", "rfc__release", "rfc__author", "site", "step", "step__round"
        )[:BATCH]
    )
    if rows:
        Approval.objects.filter(pk__in=[row.pk for row in rows]).update(**changes)
    return rows


def send_notifications() -> int:
    """Email every approver of every newly active step (A5)."""
    sent = 0
    with transaction.atomic():
        for approval in _claimed(
            Approval.objects.filter(notify_due=True, state=ApprovalState.PENDING),
            notify_due=False,
        ):
            people = recipients(approval)
            mails = []
            for user, on_behalf_of in people:
                if not user.email:
                    continue
                link = issue_link(approval, user)
                with translation.override(language_for(user)):  # each approver reads their own language
                    mails.append(
                        _send(
                            f"{_tag(approval)} {approval.rfc.number} {approval.rfc.title}",
                            "approvals/email/request.txt",
                            user.email,
                            {
                                **_context(approval),
                                "user": user,
                                "link": link,
                                "on_behalf_of": on_behalf_of,
                                "hours": settings.APPROVAL_LINK_HOURS,
                            },
                            kind=REQUEST,
                            about=approval,
                        )
                    )
                sent += 1
            record(
                "approvals.request.queued",
                approval,
                actor_name="system",
                after={
                    "role": approval.role,
                    "site": approval.site.code,
                    "to": [user.get_username() for user, _ in people],
                    "mail": "queued",
                    "mails": mails,
                },
            )
        if sent:
            after_commit(outbox.deliver)
    return sent


def send_reminders() -> int:
    """One reminder per approval still pending after APPROVAL_REMINDER_HOURS."""
    sent = 0
    with transaction.atomic():
        now = clock.now()
        due = Approval.objects.filter(
            state=ApprovalState.PENDING,
            reminded_at__isnull=True,
            step__activated_at__lte=now - reminder_delay(),
        )
        for approval in _claimed(due, reminded_at=now):
            people = recipients(approval)
            mails = []
            for user, on_behalf_of in people:
                if user.email:
                    link = issue_link(approval, user, purpose="reminder")
                    with translation.override(language_for(user)):
                        queued = _send(
                            gettext("[Reminder] %(rfc)s waits for your approval")
                            % {"rfc": approval.rfc.number},
                            "approvals/email/request.txt",
                            user.email,
                            {
                                **_context(approval),
                                "user": user,
                                "link": link,
                                "reminder": True,
                                "on_behalf_of": on_behalf_of,
                                "hours": settings.APPROVAL_LINK_HOURS,
                            },
                            kind=REMINDER,
                            about=approval,
                        )
                    mails.append(queued)
                    sent += 1
            record(
                "approvals.request.reminded",
                approval,
                actor_name="system",
                after={"to": [user.get_username() for user, _ in people], "mail": "queued", "mails": mails},
            )
        if sent:
            after_commit(outbox.deliver)
    return sent


def send_escalations() -> int:
    """Escalate to the site's release managers after APPROVAL_ESCALATION_HOURS."""
    sent = 0
    with transaction.atomic():
        now = clock.now()
        due = Approval.objects.filter(
            state=ApprovalState.PENDING,
            escalated_at__isnull=True,
            step__activated_at__lte=now - escalation_delay(),
        )
        for approval in _claimed(due, escalated_at=now):
            managers = list(holders(Role.RELEASE_MANAGER, approval.site))
            mails = []
            for user in managers:
                if user.email:
                    with translation.override(language_for(user)):
                        queued = _send(
                            gettext("[Escalation] %(rfc)s waits for %(role)s approval at %(site)s")
                            % {
                                "rfc": approval.rfc.number,
                                "role": approval.get_role_display(),
                                "site": approval.site.code,
                            },
                            "approvals/email/escalation.txt",
                            user.email,
                            {
                                **_context(approval),
                                "user": user,
                                "waiting_hours": int(
                                    (now - approval.step.activated_at).total_seconds() // 3600
                                ),
                            },
                            kind=ESCALATION,
                            about=approval,
                        )
                    mails.append(queued)
                    sent += 1
            record(
                "approvals.request.escalated",
                approval,
                actor_name="system",
                after={"to": [user.get_username() for user in managers], "mail": "queued", "mails": mails},
            )
        if sent:
            after_commit(outbox.deliver)
    return sent


def sweep() -> dict[str, int]:
    return {"notified": send_notifications(), "reminded": send_reminders(), "escalated": send_escalations()}
