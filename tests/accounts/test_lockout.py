"""Lockout: LOCKOUT_FAILURES failed passwords against one account or from one client address lock it
for LOCKOUT_MINUTES on every password entry (the sign-in page, the token endpoint, the signature's
password on the approval page and the approvals API); even the right password is refused meanwhile;
an administrator unlocks; every lock, refused attempt and unlock is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from accounts import lockout
from accounts.models import Lockout, LockoutScope
from approvals.models import Approval, ApprovalState, Signature
from audit.models import AuditEvent
from core import clock
from core.roles import Role
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for, make_user
from workflow import services as wf

pytestmark = pytest.mark.django_db

FAILURES = 3


@pytest.fixture(autouse=True)
def _lockout(settings):
    settings.LOCKOUT_FAILURES = FAILURES
    settings.LOCKOUT_MINUTES = 15


@pytest.fixture
def frozen():
    with time_machine.travel(clock.now(), tick=False) as traveller:
        yield traveller


def login(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def token(client: Client, username: str, password: str, address: str = "10.0.0.1", **extra):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
        **extra,
    )


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("seq")


# --- The sign-in page -------------------------------------------------------------------------------
def test_sign_in_page_locks_the_account_and_refuses_even_the_right_password(cast, frozen):
    client = Client()
    for _ in range(FAILURES - 1):
        response = login(client, "dev", "wrong")
        assert response.status_code == 200 and "locked" not in response.content.decode()
    locking = login(client, "dev", "wrong")
    until = clock.now() + timedelta(minutes=15)
    assert "this account is locked until" in locking.content.decode()
    assert until.strftime("%H:%M UTC") in locking.content.decode()

    right = login(client, "dev", PASSWORD, address="10.9.9.9")  # another address: the account is locked
    assert right.status_code == 200 and "_auth_user_id" not in client.session
    assert "this account is locked until" in right.content.decode()
    assert "ask an administrator to unlock it" in right.content.decode()

    [locked] = events("accounts.lockout.locked").filter(after__scope=LockoutScope.ACCOUNT)
    assert (
        locked.actor_name == "dev"
        and locked.after["entry"] == "sign-in"
        and locked.after["failures"] == FAILURES
    )
    [refused] = events("accounts.lockout.refused")
    assert refused.actor_name == "dev" and refused.after["entry"] == "sign-in"
    assert refused.after["scope"] == "account" and refused.ip_address == "10.9.9.9"

    frozen.shift(timedelta(minutes=15, seconds=1))  # the lock runs out by itself
    assert login(client, "dev", PASSWORD, address="10.9.9.9").status_code == 302
    assert not Lockout.objects.filter(scope=LockoutScope.ACCOUNT, key="dev").exists()  # count reset


def test_a_success_resets_the_accounts_count(cast, frozen):
    client = Client()
    for _ in range(FAILURES - 1):
        login(client, "dev", "wrong")
    assert login(client, "dev", PASSWORD, address="10.0.0.2").status_code == 302
    other = Client()
    for _ in range(FAILURES - 1):
        login(other, "dev", "wrong", address="10.0.0.3")
    assert login(other, "dev", PASSWORD, address="10.0.0.3").status_code == 302
    assert not events("accounts.lockout.locked").exists()


def test_failures_older_than_the_window_are_forgotten(cast, frozen):
    client = Client()
    for _ in range(FAILURES - 1):
        login(client, "dev", "wrong")
    frozen.shift(timedelta(minutes=16))
    login(client, "dev", "wrong")
    assert lockout.current_lock("dev", "10.0.0.1") is None
    assert login(client, "dev", PASSWORD).status_code == 302


def test_one_address_is_locked_across_usernames(cast, frozen):
    """Guessing a different username each time from one address still locks the address; another
    address is not affected, and the locked address's right password is refused too."""
    client = Client()
    for name in ["dev", "tester", "nosuchuser"][:FAILURES]:
        login(client, name, "wrong", address="192.0.2.7")
    [locked] = events("accounts.lockout.locked")
    assert locked.after["scope"] == "address" and locked.after["key"] == "192.0.2.7"
    refused = login(client, "itmanager", PASSWORD, address="192.0.2.7")
    assert "sign-in from your network address is locked until" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert login(Client(), "itmanager", PASSWORD, address="192.0.2.8").status_code == 302


def test_the_admin_sign_in_counts_too(cast, frozen):
    client = Client()
    for _ in range(FAILURES):
        client.post("/admin/login/", {"username": "admin", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    response = client.post(
        "/admin/login/", {"username": "admin", "password": PASSWORD}, REMOTE_ADDR="10.0.0.4"
    )
    assert "this account is locked until" in response.content.decode()
    assert events("accounts.lockout.refused").get().after["entry"] == "admin sign-in"


# --- The token endpoint ------------------------------------------------------------------------------
def test_token_endpoint_locks_with_429_retry_after_and_the_error_body(cast, frozen):
    client = Client()
    for _ in range(FAILURES - 1):
        assert token(client, "dev", "wrong").status_code == 400
    locking = token(client, "dev", "wrong")
    assert locking.status_code == 429 and locking.json()["code"] == "locked"
    right = token(client, "dev", PASSWORD, address="10.0.0.5")
    assert right.status_code == 429
    body = right.json()
    assert set(body) == {"detail", "code"} and body["code"] == "locked"
    assert "this account is locked until" in body["detail"]
    assert right["Retry-After"] == str(15 * 60)
    frozen.shift(timedelta(minutes=5))
    assert int(token(client, "dev", PASSWORD, address="10.0.0.5")["Retry-After"]) == 10 * 60
    assert events("accounts.lockout.locked").filter(after__entry="token").exists()
    assert events("accounts.lockout.refused").filter(after__entry="token").count() == 2
    assert not AuditEvent.objects.filter(action="accounts.token.issued").exists()


def test_the_counts_are_shared_by_every_entry(cast, frozen):
    """Failures on the sign-in page and the token endpoint add up: no entry gives an extra N guesses."""
    client = Client()
    login(client, "dev", "wrong", address="10.0.1.1")
    token(client, "dev", "wrong", address="10.0.1.2")
    login(client, "dev", "wrong", address="10.0.1.3")
    assert token(client, "dev", PASSWORD, address="10.0.1.4").status_code == 429


# --- The signature's password ---------------------------------------------------------------------
@pytest.fixture
def pending(cast, site_a, monkeypatch):
    monkeypatch.setattr("approvals.mail.after_commit", lambda send: send())
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    wf.submit(cast["dev"], rfc)
    return Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)


def test_signature_password_on_the_approval_page_locks(cast, pending, frozen):
    client = client_for(cast["itmanager"])
    url = f"/approvals/{pending.pk}/"
    for _ in range(FAILURES - 1):
        wrong = client.post(url, {"decision": "approve", "password": "nope"}, REMOTE_ADDR="10.0.2.1")
        assert wrong.status_code == 403 and "The password is not correct" in wrong.content.decode()
    locking = client.post(url, {"decision": "approve", "password": "nope"}, REMOTE_ADDR="10.0.2.1")
    assert "this account is locked until" in locking.content.decode()
    right = client.post(url, {"decision": "approve", "password": PASSWORD}, REMOTE_ADDR="10.0.2.1")
    assert right.status_code == 403 and not Signature.objects.exists()
    page = right.content.decode()
    assert "this account is locked until" in page and "the signature was not recorded" in page
    assert events("approvals.signature.refused").last().reason == "account locked"
    assert events("accounts.lockout.locked").filter(after__entry="signature", after__scope="account").exists()
    assert events("accounts.lockout.refused").filter(after__entry="signature").count() == 1
    # The lock is the account's: the sign-in page refuses it too.
    assert "this account is locked" in login(Client(), "itmanager", PASSWORD).content.decode()


def test_signature_password_on_the_approvals_api_locks(cast, pending, frozen):
    api = api_client_for(cast["itmanager"])
    url = f"/api/v1/approvals/{pending.pk}/approve/"
    for _ in range(FAILURES):
        assert api.post(url, {"password": "nope"}, format="json").status_code == 403
    right = api.post(url, {"password": PASSWORD}, format="json")
    assert right.status_code == 403 and not Signature.objects.exists()
    assert "this account is locked until" in right.json()["detail"]
    assert right.json()["code"]
    assert events("approvals.signature.refused").last().reason == "account locked"
    frozen.shift(timedelta(minutes=16))
    assert api.post(url, {"password": PASSWORD}, format="json").status_code == 201


def test_a_gate_waiver_password_counts_too(cast, site_a, frozen):
    from environments.models import Environment, Tier
    from releases.models import GateWaiver

    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    Environment.objects.filter(site=site_a, tier=Tier.UAT).update(data_refreshed_at=None)
    api = api_client_for(cast["releasemgr"])
    body = {"gate": "UAT data fresh", "reason": "Refreshed by hand", "password": "nope"}
    for _ in range(FAILURES):
        assert api.post(f"/api/v1/rfcs/{rfc.uuid}/waivers/", body, format="json").status_code == 400
    right = api.post(f"/api/v1/rfcs/{rfc.uuid}/waivers/", {**body, "password": PASSWORD}, format="json")
    assert right.status_code == 400 and "locked until" in str(right.json())
    assert not GateWaiver.objects.exists()
    assert events("releases.gate.waiver_refused").last().reason == "account locked"


# --- Unlock ----------------------------------------------------------------------------------------
def test_an_admin_unlocks_in_the_portal_admin(cast, frozen):
    client = Client()
    for _ in range(FAILURES):
        login(client, "dev", "wrong")
    row = Lockout.objects.get(scope=LockoutScope.ACCOUNT, key="dev")
    admin = client_for(cast["admin"])
    listing = admin.get("/admin/accounts/lockout/")
    assert listing.status_code == 200 and "dev" in listing.content.decode()
    assert lockout.locked_until_by_username(["dev", "tester"]) == {"dev": row.locked_until}
    response = admin.post(
        "/admin/accounts/lockout/", {"action": "unlock", "_selected_action": [row.pk]}, follow=True
    )
    assert response.status_code == 200 and "Unlocked 1" in response.content.decode()
    row.refresh_from_db()
    assert row.locked_until is None and row.failures == 0
    unlocked = events("accounts.lockout.unlocked").get()
    assert unlocked.actor_name == "admin" and unlocked.before["key"] == "dev"
    assert login(Client(), "dev", PASSWORD, address="10.0.3.1").status_code == 302


def test_only_admins_see_the_lockouts(cast):
    assert client_for(cast["dev"]).get("/admin/accounts/lockout/").status_code == 302  # to the admin login
    assert client_for(cast["auditor"]).get("/admin/accounts/lockout/").status_code == 302


def test_an_unknown_username_is_counted_and_tells_nothing(db, frozen):
    client = Client()
    for _ in range(FAILURES):
        login(client, "ghost", "wrong", address="10.0.4.1")
    assert "this account is locked" in login(client, "ghost", "x", address="10.0.4.2").content.decode()
    make_user("someone", Role.DEVELOPER)
    assert lockout.current_lock("Ghost", None) is not None  # case-folded


def test_an_ipv6_client_is_counted_by_its_64(cast, frozen):
    """One IPv6 client holds a whole /64: rotating addresses inside it is still one address."""
    client = Client()
    for n in range(FAILURES):
        login(client, f"user{n}", "wrong", address=f"2001:db8:0:1::{n + 1}")
    assert Lockout.objects.get(scope=LockoutScope.ADDRESS).key == "2001:db8:0:1::/64"
    refused = login(client, "dev", PASSWORD, address="2001:db8:0:1:ffff::9")
    assert "network address is locked" in refused.content.decode()
    assert login(Client(), "dev", PASSWORD, address="2001:db8:0:2::1").status_code == 302


def test_an_empty_signature_password_is_refused_but_not_counted(cast, pending):
    client = client_for(cast["itmanager"])
    for _ in range(FAILURES + 1):
        response = client.post(f"/approvals/{pending.pk}/", {"decision": "approve", "password": ""})
        assert response.status_code == 403 and "The password is not correct" in response.content.decode()
    assert not Lockout.objects.exists()


def test_old_rows_with_nothing_to_say_are_purged(cast, frozen):
    login(Client(), "dev", "wrong", address="10.0.5.1")
    assert Lockout.objects.count() == 2
    frozen.shift(timedelta(minutes=16))
    login(Client(), "tester", "wrong", address="10.0.5.2")
    assert set(Lockout.objects.values_list("key", flat=True)) == {"tester", "10.0.5.2"}
