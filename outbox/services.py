"""Queue a mail in the caller's transaction; deliver due mails, each in its own try.

- `queue()` writes the row inside the caller's transaction, so a mail exists if and only if the act it
  reports committed, and wakes a worker once that transaction commits (DESIGN principle 1).
- `deliver()` claims due rows (SKIP LOCKED on PostgreSQL; SQLite's writers queue anyway), sends each
  one on its own, and records the outcome: sent (audit `outbox.mail.sent`), or retried after
  MAIL_RETRY_BASE_SECONDS × 2^(attempt−1), capped at MAIL_RETRY_MAX_SECONDS, and failed for good after
  MAIL_RETRY_MAX_ATTEMPTS (audit `outbox.mail.failed`). One bad mail never holds up the rest.
- A claim lasts CLAIM_SECONDS: a worker that dies while sending leaves its mails to be sent again then
  (at least once, never lost).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction

from audit.services import record
from core import clock, jobs
from outbox.models import Mail, MailState
from outbox.signals import mail_failed, mail_sent

logger = logging.getLogger(__name__)
BATCH = 50
CLAIM_SECONDS = 300
ERROR_MAX = 2000


def queue(
    *,
    to: str | list[str],
    subject: str,
    body: str,
    html_body: str = "",
    headers: dict | None = None,
    kind: str = "",
    about=None,
    from_email: str = "",
) -> Mail:
    """A mail to deliver once the caller's transaction commits. `about` is the object the mail
    concerns; its delivery is recorded in the audit trail against that object."""
    object_type = object_id = object_pk = site_code = ""
    if about is not None:
        object_type = f"{about._meta.app_label}.{about._meta.model_name}"
        object_id = str(getattr(about, "audit_object_id", about.pk))
        object_pk = str(about.pk)
        site_code = getattr(about, "audit_site_code", None) or ""
    mail = Mail.objects.create(
        kind=kind,
        to=[to] if isinstance(to, str) else list(to),
        from_email=from_email,
        subject=subject,
        body=body,
        html_body=html_body,
        headers=headers or {},
        next_attempt_at=clock.now(),
        object_type=object_type,
        object_id=object_id,
        object_pk=object_pk,
        site_code=site_code[:20],
    )
    nudge()
    return mail


def urgent(subject: str, body: str, to: list[str], *, about, kind: str) -> Mail:
    """An urgent alert (marked high importance): queued like any mail, and sent as soon as the
    current transaction commits rather than at the next delivery beat."""
    mail = queue(
        to=to,
        subject=subject,
        body=body,
        headers={"Importance": "high", "X-Priority": "1"},
        kind=kind,
        about=about,
    )
    transaction.on_commit(deliver)
    return mail


def _wake() -> None:
    try:
        current_app.send_task("outbox.tasks.deliver")
    except Exception:  # a broker outage never fails the caller: the beat delivers the row anyway
        logger.warning("outbox nudge not sent; the periodic delivery sends the mail", exc_info=True)


def nudge() -> None:
    """Wake a worker once the current transaction commits (once per transaction, however many mails)."""
    if connection.in_atomic_block and any(func is _wake for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_wake)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: base, 2×base, 4×base … up to the cap."""
    return timedelta(
        seconds=jobs.backoff_seconds(
            attempts, settings.MAIL_RETRY_BASE_SECONDS, settings.MAIL_RETRY_MAX_SECONDS
        )
    )


def _claim(limit: int) -> list[Mail]:
    """Due rows no other worker holds, their attempt counted and their claim held for CLAIM_SECONDS."""
    return jobs.claim_due(Mail, limit=limit, claim_seconds=CLAIM_SECONDS)


def message(mail: Mail, using=None) -> EmailMultiAlternatives:
    built = EmailMultiAlternatives(
        subject=mail.subject,
        body=mail.body,
        from_email=mail.from_email or None,
        to=mail.to,
        headers=mail.headers or None,
        connection=using,
    )
    if mail.html_body:
        built.attach_alternative(mail.html_body, "text/html")
    return built


def _audit(action: str, mail: Mail, **extra) -> None:
    record(
        action,
        actor_name="system",
        object_type=mail.object_type or "outbox.mail",
        object_id=mail.object_id or str(mail.pk),
        site_code=mail.site_code,
        after={
            "mail": mail.pk,
            "kind": mail.kind,
            "about": mail.object_pk,
            "to": mail.to,
            "subject": mail.subject,
            **extra,
        },
    )


def _sent(mail: Mail) -> None:
    with transaction.atomic():
        mail.state, mail.sent_at, mail.last_error = MailState.SENT, clock.now(), ""
        mail.save(update_fields=["state", "sent_at", "last_error"])
        _audit("outbox.mail.sent", mail, attempts=mail.attempts)
        mail_sent.send(sender=Mail, mail=mail)


def _failed(mail: Mail, exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
    with transaction.atomic():
        mail.last_error = error
        if mail.attempts >= settings.MAIL_RETRY_MAX_ATTEMPTS:
            mail.state = MailState.FAILED
            mail.save(update_fields=["state", "last_error"])
            _audit("outbox.mail.failed", mail, attempts=mail.attempts, error=error)
            mail_failed.send(sender=Mail, mail=mail)
            logger.error("mail %s failed for good after %s attempts: %s", mail.pk, mail.attempts, error)
            return "failed"
        mail.next_attempt_at = clock.now() + backoff(mail.attempts)
        mail.save(update_fields=["last_error", "next_attempt_at"])
    logger.warning(
        "mail %s not sent (attempt %s), retried at %s: %s",
        mail.pk,
        mail.attempts,
        mail.next_attempt_at,
        error,
    )
    return "retrying"


def deliver(limit: int = BATCH) -> dict[str, int]:
    """Send every due mail (up to `limit`), each in its own try. {"sent", "retrying", "failed"}."""
    outcome = {"sent": 0, "retrying": 0, "failed": 0}
    backend = None
    for mail in _claim(limit):
        try:
            if backend is None:
                backend = get_connection(fail_silently=False)
                backend.open()  # one session for the batch; a broken one is replaced below
            if not message(mail, using=backend).send(fail_silently=False):
                raise RuntimeError("the mail backend accepted no recipient")
        except Exception as exc:  # any failure of one mail: record it, go on with the next
            outcome[_failed(mail, exc)] += 1
            if backend is not None:
                with contextlib.suppress(Exception):  # a broken connection is replaced by a fresh one
                    backend.close()
                backend = None
        else:
            _sent(mail)
            outcome["sent"] += 1
    if backend is not None:
        with contextlib.suppress(Exception):  # every mail's outcome is already recorded
            backend.close()
    return outcome
