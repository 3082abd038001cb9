"""The mail outbox: a CR/LF that would break a mail header is refused at input; a mail that still fails
at send time is recorded, retried with backoff and never holds up the others of its batch; an SMTP
server that refuses leaves every mail queued for the next try; nothing is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail as django_mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from approvals import mail as approval_mail
from approvals.models import Approval, ApprovalState
from audit.models import AuditEvent
from core import clock
from outbox import services as outbox
from outbox.models import Mail, MailState
from tests import factories
from tests.conftest import api_client_for, client_for
from tests.net import free_port
from workflow import services as wf

pytestmark = pytest.mark.django_db


class RefusingSMTP(LocmemBackend):
    """Stands for a mail server that is down: every connection attempt fails, as smtplib's would."""

    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")

    def send_messages(self, messages):
        self.open()


@pytest.fixture
def retry_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MAIL_RETRY_BASE_SECONDS = 60
    settings.MAIL_RETRY_MAX_SECONDS = 600
    settings.MAIL_RETRY_MAX_ATTEMPTS = 4
    return settings


# --- CR/LF refused at input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "title", ["Raise timeout\r\nBcc: everyone@evil.test", "Two\nlines", "Carriage\rreturn"]
)
def test_a_title_with_a_line_break_is_refused_on_the_page_and_the_api(cast, site_a, title):
    release = factories.release(cast["dev"], "1.0.5")
    form = {
        "title": title,
        "description": "Printers time out.",
        "release": release.pk,
        "estimated_downtime_minutes": 0,
        "rollback_plan": "Redeploy 1.0.0",
        "impact-0-site": site_a.code,
    }
    page = client_for(cast["dev"]).post("/rfcs/new/", form)
    assert page.status_code in (200, 400)
    assert "Line breaks are not allowed here." in page.content.decode()
    api = api_client_for(cast["dev"]).post(
        "/api/v1/rfcs/",
        {
            "title": title,
            "description": "Printers time out.",
            "release": str(release.uuid),
            "impacts": [{"site": site_a.code, "lines": ["Line 2"], "modules": []}],
            "rollback_plan": "Redeploy 1.0.0",
        },
        format="json",
    )
    assert api.status_code == 400, api.content
    assert api.json()["code"] == "invalid" and api.json()["fields"]["title"] == [
        "Line breaks are not allowed here."
    ]
    from releases.models import Rfc

    assert not Rfc.objects.exists()


def test_the_service_refuses_it_too_and_an_edit_cannot_add_one(cast, site_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        factories.rfc(cast["dev"], site_a, title="a\nb")
    assert "title" in refused.value.message_dict
    rfc = factories.rfc(cast["dev"], site_a, version="1.0.2")
    patched = api_client_for(cast["dev"]).patch(
        f"/api/v1/rfcs/{rfc.uuid}/", {"title": "x\r\ny"}, format="json"
    )
    assert patched.status_code == 400 and "title" in patched.json()["fields"], patched.content
    rfc.refresh_from_db()
    assert rfc.title == "Raise label printer timeout"
    with pytest.raises(ValidationError):
        factories.release(cast["dev"], "1.0.9", product="MES\r\nBcc: x@evil.test")


# --- Delivery: one bad mail, the rest of its batch ---------------------------------------------------
def test_a_mail_whose_header_fails_is_retried_with_backoff_and_the_others_go(retry_settings, cast):
    start = clock.now()
    with time_machine.travel(start, tick=False):
        first = outbox.queue(to="a@plant.test", subject="First", body="1", kind="test")
        bad = outbox.queue(to="b@plant.test", subject="Broken\r\nBcc: all@evil.test", body="2", kind="test")
        last = outbox.queue(to="c@plant.test", subject="Last", body="3", kind="test", about=cast["dev"])
        assert outbox.deliver() == {"sent": 2, "retrying": 1, "failed": 0}
    assert sorted(m.subject for m in django_mail.outbox) == ["First", "Last"]
    first.refresh_from_db(), bad.refresh_from_db(), last.refresh_from_db()
    assert first.state == last.state == MailState.SENT and first.sent_at == start
    assert bad.state == MailState.QUEUED and bad.attempts == 1
    assert "BadHeaderError" in bad.last_error and "newlines" in bad.last_error
    assert bad.next_attempt_at == start + timedelta(seconds=60)
    sent = AuditEvent.objects.filter(action="outbox.mail.sent").order_by("seq")
    assert [event.after["subject"] for event in sent] == ["First", "Last"]
    assert sent.last().object_type == "auth.user" and sent.last().object_id == str(cast["dev"].pk)
    assert not AuditEvent.objects.filter(action="outbox.mail.failed").exists()

    # Not due before its backoff; then 60 s, 120 s, 240 s; after the 4th try it is failed for good.
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        assert outbox.deliver() == {"sent": 0, "retrying": 0, "failed": 0}
    moment = start + timedelta(seconds=60)
    for expected_wait in (120, 240):
        with time_machine.travel(moment, tick=False):
            assert outbox.deliver() == {"sent": 0, "retrying": 1, "failed": 0}
        bad.refresh_from_db()
        assert bad.next_attempt_at == moment + timedelta(seconds=expected_wait)
        moment += timedelta(seconds=expected_wait)
    with time_machine.travel(moment, tick=False):
        assert outbox.deliver() == {"sent": 0, "retrying": 0, "failed": 1}
    bad.refresh_from_db()
    assert bad.state == MailState.FAILED and bad.attempts == 4
    failed = AuditEvent.objects.get(action="outbox.mail.failed")
    assert failed.after["mail"] == bad.pk and "BadHeaderError" in failed.after["error"]
    with time_machine.travel(moment + timedelta(days=1), tick=False):
        assert outbox.deliver() == {"sent": 0, "retrying": 0, "failed": 0}  # failed for good
    assert len(django_mail.outbox) == 2  # nothing sent twice


def test_backoff_doubles_up_to_the_cap(retry_settings):
    assert [outbox.backoff(n).total_seconds() for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


def test_an_smtp_server_that_refuses_leaves_every_mail_queued(retry_settings):
    retry_settings.EMAIL_BACKEND = f"{RefusingSMTP.__module__}.RefusingSMTP"
    start = clock.now()
    with time_machine.travel(start, tick=False):
        for n in range(3):
            outbox.queue(to=f"p{n}@plant.test", subject=f"Mail {n}", body="b")
        assert outbox.deliver() == {"sent": 0, "retrying": 3, "failed": 0}
    rows = list(Mail.objects.order_by("pk"))
    assert all(row.state == MailState.QUEUED and row.attempts == 1 for row in rows)
    assert all("Connection refused" in row.last_error for row in rows)
    # The server is back: every mail goes at its next try.
    retry_settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(start + timedelta(seconds=60), tick=False):
        assert outbox.deliver() == {"sent": 3, "retrying": 0, "failed": 0}
    assert sorted(m.subject for m in django_mail.outbox) == ["Mail 0", "Mail 1", "Mail 2"]


def test_a_real_smtp_server_that_refuses_leaves_the_mail_queued(retry_settings):
    """Through Django's real SMTP backend against a local port nobody listens on."""
    port = free_port()  # closed again: connections to it are refused
    retry_settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    retry_settings.EMAIL_HOST, retry_settings.EMAIL_PORT = "127.0.0.1", port
    retry_settings.EMAIL_USE_TLS, retry_settings.EMAIL_TIMEOUT = False, 5
    queued = outbox.queue(to="x@plant.test", subject="Hello", body="b")
    assert outbox.deliver() == {"sent": 0, "retrying": 1, "failed": 0}
    queued.refresh_from_db()
    assert queued.state == MailState.QUEUED and "ConnectionRefusedError" in queued.last_error


def test_a_rolled_back_act_queues_no_mail(retry_settings):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.queue(to="x@plant.test", subject="Hello", body="b")
        raise RuntimeError("the act fails")
    assert not Mail.objects.exists()


# --- Approval mail through the outbox ---------------------------------------------------------------
def test_an_approval_is_notified_when_its_mail_left_not_when_it_was_queued(
    people, site_a, retry_settings, monkeypatch
):
    monkeypatch.setattr("approvals.mail.after_commit", lambda send: None)  # the worker delivers later
    rfc = wf.submit(people["dev"], factories.ready_rfc(people["dev"], people["tester"], site_a))
    queued = approval_mail.send_notifications()
    approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING, role="it_manager")
    assert queued >= 1 and django_mail.outbox == []
    assert approval.notified_at is None and not approval.notify_due
    event = AuditEvent.objects.filter(action="approvals.request.queued").latest("seq")
    assert event.after["mail"] == "queued" and len(event.after["mails"]) >= 1
    assert Mail.objects.filter(kind="approvals.request", state=MailState.QUEUED).count() == queued
    assert outbox.deliver()["sent"] == queued
    approval.refresh_from_db()
    assert approval.notified_at is not None
    delivered = AuditEvent.objects.filter(action="outbox.mail.sent", object_id=rfc.number)
    assert delivered.count() == queued and delivered.first().object_type == "approvals.approval"


def test_a_title_that_slipped_in_before_still_fails_alone(people, site_a, retry_settings, monkeypatch):
    """An RFC whose title got a line break before the rule (an old row): its request mails fail and are
    retried, every other RFC's mails of the same sweep are delivered, and it is not marked notified."""
    monkeypatch.setattr("approvals.mail.after_commit", lambda send: None)
    good = wf.submit(
        people["dev"], factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.1")
    )
    bad = wf.submit(
        people["dev"], factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.2")
    )
    type(bad).objects.filter(pk=bad.pk).update(title="Old title\r\nBcc: all@evil.test")
    queued = approval_mail.send_notifications()
    outcome = outbox.deliver()
    bad_mails = Mail.objects.filter(subject__contains=bad.number)
    assert outcome["retrying"] == bad_mails.count() >= 1 and outcome["sent"] == queued - bad_mails.count()
    assert {m.subject.split()[1] for m in django_mail.outbox} == {good.number}
    assert Approval.objects.filter(rfc=good, notified_at__isnull=False).exists()
    assert not Approval.objects.filter(rfc=bad, notified_at__isnull=False).exists()
    assert all(m.state == MailState.QUEUED and "BadHeaderError" in m.last_error for m in bad_mails)
