"""The client address has one rule (core/clientip.py): X-Forwarded-For is believed only from a trusted
proxy. The audit trail, the lockout and the token endpoint's throttle all use it."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory

from accounts.models import Lockout, LockoutScope
from audit.models import AuditEvent
from core.clientip import client_ip, trusted_networks

pytestmark = pytest.mark.django_db


def _ip(settings, remote, xff=None, trusted=()):
    settings.TRUSTED_PROXIES = list(trusted)
    extra = {"HTTP_X_FORWARDED_FOR": xff} if xff is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **extra))


def test_the_rule(settings):
    assert _ip(settings, "203.0.113.9", "1.2.3.4") == "203.0.113.9"  # no trusted proxies: header ignored
    assert _ip(settings, "203.0.113.9", "1.2.3.4", ["10.0.0.0/8"]) == "203.0.113.9"  # untrusted peer
    assert _ip(settings, "10.0.0.2", "198.51.100.4", ["10.0.0.0/8"]) == "198.51.100.4"
    # The client prepends what it likes; the rightmost untrusted hop is the one the proxy saw.
    assert _ip(settings, "10.0.0.2", "6.6.6.6, 198.51.100.4", ["10.0.0.0/8"]) == "198.51.100.4"
    # Chained proxies are skipped from the right.
    assert _ip(settings, "10.0.0.2", "198.51.100.4, 10.0.0.7", ["10.0.0.0/8"]) == "198.51.100.4"
    # A malformed hop stops at the last trusted proxy; no header at all is the proxy itself.
    assert _ip(settings, "10.0.0.2", "not-an-ip", ["10.0.0.0/8"]) == "10.0.0.2"
    assert _ip(settings, "10.0.0.2", None, ["10.0.0.0/8"]) == "10.0.0.2"
    assert _ip(settings, "2001:db8::5", "[2001:db8:1::9]:443", ["2001:db8::/64"]) == "2001:db8:1::9"
    assert _ip(settings, "", "1.2.3.4") is None


def test_a_bad_trusted_proxy_entry_is_refused_by_name():
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES: 'ten.0.0.1'"):
        trusted_networks(("ten.0.0.1",))


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(cast, settings):
    """Rotating X-Forwarded-For values from one untrusted peer: every guess counts against that peer,
    which is locked; the audit trail records the peer, not the header."""
    settings.LOCKOUT_FAILURES = 3
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    client = Client()
    for n in range(3):
        client.post(
            "/accounts/login/",
            {"username": f"user{n}", "password": "wrong"},
            REMOTE_ADDR="203.0.113.50",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
    assert Lockout.objects.get(scope=LockoutScope.ADDRESS).key == "203.0.113.50"
    assert not Lockout.objects.filter(key__startswith="198.51.100.").exists()
    assert set(
        AuditEvent.objects.filter(action="accounts.login.failed").values_list("ip_address", flat=True)
    ) == {"203.0.113.50"}


def test_forwarded_for_from_a_trusted_proxy_is_honoured(cast, settings):
    settings.LOCKOUT_FAILURES = 3
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    client = Client()
    for n in range(3):
        client.post(
            "/accounts/login/",
            {"username": f"user{n}", "password": "wrong"},
            REMOTE_ADDR="10.1.2.3",
            HTTP_X_FORWARDED_FOR="198.51.100.77",
        )
    assert Lockout.objects.get(scope=LockoutScope.ADDRESS, locked_until__isnull=False).key == "198.51.100.77"
    # Another client behind the same proxy is not locked out.
    ok = client.post(
        "/accounts/login/",
        {"username": "dev", "password": "correct-horse-battery"},
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_FORWARDED_FOR="198.51.100.78",
    )
    assert ok.status_code == 302
    assert AuditEvent.objects.filter(action="accounts.login.succeeded").get().ip_address == "198.51.100.78"


def test_the_token_throttle_counts_per_peer_not_per_header(cast, settings):
    """The issue's reproduction: 40 rotating X-Forwarded-For values were 40 guesses. Now the throttle
    (20 a minute) counts the peer; the lockout is off here to see the throttle alone."""
    settings.LOCKOUT_FAILURES = 100
    cache.clear()
    client = Client()
    statuses = [
        client.post(
            "/api/v1/auth/token/",
            {"username": "dev", "password": "wrong"},
            content_type="application/json",
            REMOTE_ADDR="203.0.113.60",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(25)
    ]
    cache.clear()
    assert statuses[:20] == [400] * 20 and set(statuses[20:]) == {429}
