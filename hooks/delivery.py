"""Queue a post in the act's transaction; deliver due posts, each on its own, with retries.

Signature (signed-JSON webhooks): the receiver recomputes
`hex(HMAC-SHA256(secret, f"{X-PCC-Timestamp}.{raw body}"))` and compares it with `X-PCC-Signature:
sha256=<hex>` in constant time; it should refuse a timestamp more than five minutes old (replays).
Slack and Teams webhooks carry their own secret in the URL and get the same headers.

A post is sent (2xx), retried after WEBHOOK_RETRY_BASE_SECONDS × 2^(attempt−1) up to the cap, or failed
for good after WEBHOOK_RETRY_MAX_ATTEMPTS (audited both ways). Redirects are not followed and at most
2 KB of an answer is kept. A claim lasts CLAIM_SECONDS: a worker that dies mid-post leaves the row to be
sent again (at least once, never lost).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction

from audit.services import record
from core import clock, jobs
from hooks.models import Delivery, DeliveryState
from hooks.payloads import shaped

logger = logging.getLogger(__name__)
BATCH = 50
CLAIM_SECONDS = 300
EXCERPT = 2000
TASK = "hooks.tasks.deliver"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def queue(*, url: str, format: str, kind: str, data: dict, webhook=None, user=None) -> Delivery:
    """A post to make once the caller's transaction commits (a worker is woken then)."""
    body = json.dumps(shaped(data, format), sort_keys=True, separators=(",", ":"))
    delivery = Delivery.objects.create(
        webhook=webhook, user=user, url=url, format=format, kind=kind, body=body, next_attempt_at=clock.now()
    )
    jobs.nudge(TASK)
    return delivery


def _claim(limit: int) -> list[Delivery]:
    return jobs.claim_due(Delivery, limit=limit, claim_seconds=CLAIM_SECONDS, related=("webhook",))


def _post(delivery: Delivery) -> tuple[int, str]:
    body = delivery.body.encode()
    timestamp = str(int(clock.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PlantChangeControl-Webhook",
        "X-PCC-Event": delivery.kind,
        "X-PCC-Delivery": str(delivery.pk),
        "X-PCC-Timestamp": timestamp,
    }
    if delivery.webhook is not None:
        headers["X-PCC-Signature"] = "sha256=" + signature(delivery.webhook.secret, timestamp, body)
    with requests.post(
        delivery.url,
        data=body,
        headers=headers,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        allow_redirects=False,
        stream=True,
    ) as response:
        excerpt = next(response.iter_content(EXCERPT), b"").decode("utf-8", "replace")
        return response.status_code, excerpt


def _audit(action: str, delivery: Delivery, **extra) -> None:
    webhook = delivery.webhook
    record(
        action,
        webhook,
        actor_name="system",
        object_type=None if webhook is not None else "hooks.delivery",
        object_id=None if webhook is not None else str(delivery.pk),
        after={"delivery": delivery.pk, "kind": delivery.kind, "attempts": delivery.attempts, **extra},
    )


def _outcome(delivery: Delivery, status: int | None, excerpt: str, error: str) -> str:
    delivery.status_code, delivery.response_excerpt = status, excerpt[:EXCERPT]
    fields = ["status_code", "response_excerpt", "state", "last_error", "next_attempt_at", "sent_at"]
    with transaction.atomic():
        if status is not None and 200 <= status < 300:
            delivery.state, delivery.sent_at, delivery.last_error = DeliveryState.SENT, clock.now(), ""
            delivery.save(update_fields=fields)
            _audit("hooks.delivery.sent", delivery, status=status)
            return "sent"
        delivery.last_error = (error or f"HTTP {status}")[:EXCERPT]
        if delivery.attempts >= settings.WEBHOOK_RETRY_MAX_ATTEMPTS:
            delivery.state = DeliveryState.FAILED
            delivery.save(update_fields=fields)
            _audit("hooks.delivery.failed", delivery, status=status, error=delivery.last_error)
            return "failed"
        wait = jobs.backoff_seconds(
            delivery.attempts, settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS
        )
        delivery.next_attempt_at = clock.now() + timedelta(seconds=wait)
        delivery.save(update_fields=fields)
    return "retrying"


def deliver(limit: int = BATCH) -> dict[str, int]:
    """Post every due delivery (up to `limit`), each in its own try. {"sent", "retrying", "failed"}."""
    outcome = {"sent": 0, "retrying": 0, "failed": 0}
    for delivery in _claim(limit):
        try:
            status, excerpt = _post(delivery)
            error = ""
        except requests.RequestException as exc:  # refused, timed out, bad answer: retried
            status, excerpt, error = None, "", f"{type(exc).__name__}: {exc}"
        outcome[_outcome(delivery, status, excerpt, error)] += 1
    return outcome
