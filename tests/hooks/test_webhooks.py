"""Webhooks and chat (issue 15 item 3), against a real HTTP receiver on a free port: signed bodies the
receiver verifies, retries after a 500, delivery while Redis is down, the event filter, Slack and Teams
shapes, the send-test button, the delivery log and who may manage a site's webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from core import clock
from core.roles import Role
from hooks import delivery
from hooks.models import ChatEndpoint, Delivery, Webhook
from notify import events
from notify.models import Preference
from outbox.models import Mail
from tests import factories
from tests.conftest import client_for, make_user
from tests.hooks.receiver import Receiver
from tests.net import free_port


def hook(site, user, url, **fields) -> Webhook:
    return Webhook.objects.create(site=site, name="Plant channel", url=url, created_by=user, **fields)


def emit(kind, rfc, **kwargs) -> None:
    with transaction.atomic():
        events.emit(kind, rfc, **kwargs)


def verified(request: dict, secret: str) -> bool:
    """What a receiver does: recompute the HMAC over timestamp + "." + raw body, compare in constant time."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = hmac.new(
        secret.encode(), headers["x-pcc-timestamp"].encode() + b"." + request["body"], hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["x-pcc-signature"], f"sha256={expected}")


def test_a_signed_post_the_receiver_verifies(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    with Receiver() as receiver:
        webhook = hook(site_a, cast["releasemgr"], receiver.url)
        emit("rfc.approved", rfc)
        assert delivery.deliver() == {"sent": 1, "retrying": 0, "failed": 0}
    [request] = receiver.requests
    assert verified(request, webhook.secret)
    tampered = {**request, "body": request["body"].replace(b"approved", b"rejected")}
    assert not verified(tampered, webhook.secret)
    body = json.loads(request["body"])
    assert body["event"] == "rfc.approved" and body["rfc"]["number"] == rfc.number
    assert body["url"].endswith(f"/rfcs/{rfc.uuid}/") and body["site"] == site_a.code
    row = Delivery.objects.get()
    assert (row.state, row.status_code, row.attempts) == ("sent", 200, 1)
    assert AuditEvent.objects.filter(action="hooks.delivery.sent", object_id=str(webhook.pk)).exists()


def test_a_500_is_retried_after_its_backoff(cast, site_a, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    rfc = factories.rfc(cast["dev"], site_a)
    with Receiver(answers=[500]) as receiver:
        hook(site_a, cast["releasemgr"], receiver.url)
        emit("rfc.scheduled", rfc)
        assert delivery.deliver() == {"sent": 0, "retrying": 1, "failed": 0}
        row = Delivery.objects.get()
        assert (row.state, row.status_code, row.last_error) == ("queued", 500, "HTTP 500")
        assert delivery.deliver() == {"sent": 0, "retrying": 0, "failed": 0}  # not due yet
        with time_machine.travel(clock.now() + timedelta(seconds=31), tick=False):
            assert delivery.deliver() == {"sent": 1, "retrying": 0, "failed": 0}
    assert len(receiver.requests) == 2
    assert Delivery.objects.get().attempts == 2


def test_failed_for_good_after_the_last_try(cast, site_a, settings):
    settings.WEBHOOK_RETRY_MAX_ATTEMPTS = 1
    rfc = factories.rfc(cast["dev"], site_a)
    hook(site_a, cast["releasemgr"], f"http://127.0.0.1:{free_port()}/nobody")
    emit("rfc.scheduled", rfc)
    assert delivery.deliver() == {"sent": 0, "retrying": 0, "failed": 1}
    row = Delivery.objects.get()
    assert row.state == "failed" and "ConnectionError" in row.last_error
    assert AuditEvent.objects.filter(action="hooks.delivery.failed").exists()


@pytest.fixture
def broker_down(settings):
    """The broker is a closed port: every nudge fails at once (and is only logged)."""
    from changecontrol.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "broker_connection_max_retries")}
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    app.conf.broker_connection_max_retries = 0
    app.pool.force_close_all()
    yield
    app.conf.update(saved)
    app.pool.force_close_all()


@pytest.mark.django_db(transaction=True)
def test_delivered_while_redis_is_down(cast, site_a, broker_down):
    """The act commits and the post is kept in the database; the beat's sweep sends it later."""
    rfc = factories.rfc(cast["dev"], site_a)
    with Receiver() as receiver:
        hook(site_a, cast["releasemgr"], receiver.url)
        emit("rfc.scheduled", rfc)  # the nudge after commit fails: logged, not raised
        assert Delivery.objects.get().state == "queued"
        assert delivery.deliver()["sent"] == 1
    assert len(receiver.requests) == 1


def test_the_event_filter_and_paused_hooks(cast, site_a, site_b):
    rfc = factories.rfc(cast["dev"], site_a)
    hook(site_a, cast["releasemgr"], "https://hooks.example/a", events=["deployment.rolled_back"])
    hook(site_a, cast["releasemgr"], "https://hooks.example/paused", active=False)
    hook(site_b, cast["releasemgr"], "https://hooks.example/other-site")
    emit("rfc.approved", rfc)
    assert not Delivery.objects.exists()
    emit("deployment.rolled_back", rfc, deployment=factories.booking(rfc, site_a, cast["releasemgr"]))
    assert list(Delivery.objects.values_list("url", flat=True)) == ["https://hooks.example/a"]


def _slack_ok(body: dict) -> None:
    """Slack incoming webhooks: `text` (string) and Block Kit `blocks` of known types."""
    assert isinstance(body["text"], str) and body["text"]
    for block in body["blocks"]:
        assert block["type"] in {"section", "actions"}
        if block["type"] == "section":
            assert block["text"]["type"] in {"mrkdwn", "plain_text"} and isinstance(
                block["text"]["text"], str
            )
            assert len(block["text"]["text"]) <= 3000
        else:
            for element in block["elements"]:
                assert element["type"] == "button" and element["text"]["type"] == "plain_text"
                assert element["url"].startswith("http")


def _teams_ok(body: dict) -> None:
    """Teams workflow webhooks: a message with one Adaptive Card attachment."""
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    for element in card["body"]:
        assert element["type"] in {"TextBlock", "FactSet"}
        if element["type"] == "FactSet":
            assert all(set(fact) == {"title", "value"} for fact in element["facts"])
    assert all(a["type"] == "Action.OpenUrl" and a["url"].startswith("http") for a in card["actions"])


def test_slack_and_teams_payloads_have_their_documented_shapes(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    deployment = factories.booking(rfc, site_a, cast["releasemgr"])
    with Receiver() as receiver:
        hook(site_a, cast["releasemgr"], receiver.url, format="slack")
        hook(site_a, cast["releasemgr"], receiver.url + "?teams", format="teams")
        emit("deployment.rollback_failed", rfc, deployment=deployment, data={"reason": "restore refused"})
        assert delivery.deliver()["sent"] == 2
    by_path = {r["path"]: json.loads(r["body"]) for r in receiver.requests}
    slack, teams = by_path["/hook"], by_path["/hook?teams"]
    _slack_ok(slack)
    _teams_ok(teams)
    assert slack["text"].startswith("URGENT: ") and "restore refused" in json.dumps(slack)
    assert teams["attachments"][0]["content"]["body"][0]["color"] == "Attention"


def test_a_person_who_chose_chat_gets_it_in_their_own_channel(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    Preference.objects.create(user=cast["dev"], kind="rfc.approved", channel="chat")
    emit("rfc.approved", rfc)
    assert (
        Mail.objects.filter(kind="notify.rfc.approved", to=["dev@plant.test"]).count() == 1
    )  # no address yet
    ChatEndpoint.objects.create(user=cast["dev"], url="https://chat.example/me", format="teams")
    emit("rfc.approved", rfc)
    assert Mail.objects.filter(kind="notify.rfc.approved", to=["dev@plant.test"]).count() == 1
    chat = Delivery.objects.get(user=cast["dev"])
    _teams_ok(json.loads(chat.body))


# --- Pages ---------------------------------------------------------------------------------------
def test_add_test_and_read_the_log(cast, site_a):
    client = client_for(cast["releasemgr"])
    with Receiver() as receiver:
        response = client.post(
            reverse("hooks:site", args=[site_a.code]),
            {
                "name": "Line 2 Teams",
                "url": receiver.url,
                "format": "json",
                "active": "on",
                "events": ["rfc.approved"],
            },
        )
        assert response.status_code == 302
        webhook = Webhook.objects.get()
        assert webhook.events == ["rfc.approved"] and webhook.created_by == cast["releasemgr"]
        assert client.post(reverse("hooks:test", args=[webhook.pk])).status_code == 302
        delivery.deliver()
    [request] = receiver.requests
    assert verified(request, webhook.secret) and json.loads(request["body"])["event"] == "webhook.test"
    page = client.get(reverse("hooks:detail", args=[webhook.pk])).content.decode()
    assert 'data-state="sent"' in page and "HTTP 200" in page and "Test message" in page
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"hooks.webhook.created", "hooks.webhook.tested", "hooks.delivery.sent"} <= actions


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/x", "javascript:alert(1)", "https://hooks.example/\r\nX: y", "x" * 600, ""]
)
def test_a_bad_address_is_a_form_error(cast, site_a, url):
    response = client_for(cast["releasemgr"]).post(
        reverse("hooks:site", args=[site_a.code]), {"name": "x", "url": url, "format": "json"}
    )
    assert response.status_code == 400
    assert not Webhook.objects.exists()


def test_only_release_managers_and_admins_of_the_site(cast, site_a, site_b):
    webhook = hook(site_a, cast["releasemgr"], "https://hooks.example/a")
    rm_b = make_user("rm_b", Role.RELEASE_MANAGER, site=site_b)
    for user in (cast["dev"], cast["itmanager"], rm_b):
        client = client_for(user)
        assert client.get(reverse("hooks:site", args=[site_a.code])).status_code == 404
        assert client.get(reverse("hooks:detail", args=[webhook.pk])).status_code == 404
        assert client.post(reverse("hooks:test", args=[webhook.pk])).status_code == 404
    assert client_for(cast["admin_a"]).get(reverse("hooks:detail", args=[webhook.pk])).status_code == 200
    assert not Delivery.objects.exists()


def test_the_personal_chat_page(cast):
    client = client_for(cast["dev"])
    assert client.get(reverse("hooks:chat")).status_code == 200
    bad = client.post(reverse("hooks:chat"), {"url": "not a url", "format": "slack"})
    assert bad.status_code == 400 and not ChatEndpoint.objects.exists()
    client.post(reverse("hooks:chat"), {"url": "https://hooks.slack.example/T1/B2/x", "format": "slack"})
    assert ChatEndpoint.objects.get(user=cast["dev"]).format == "slack"
    client.post(reverse("hooks:chat"), {"remove": "1"})
    assert not ChatEndpoint.objects.exists()
