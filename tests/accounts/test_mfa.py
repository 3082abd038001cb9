"""Two-step sign-in (MFA): enrolment, the code after any sign-in, recovery codes, the admin reset, and
a current code with every signature (page and API) where the signer has an authenticator.

Codes are computed from the device's own secret with django-otp's TOTP at a clock the test moves
(time_machine), never read from a screen or waited for.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import DirectoryIdentity, DirectorySource
from approvals.models import Approval, ApprovalState, Signature
from audit.models import AuditEvent
from core.roles import Role
from environments.models import Environment, Tier
from tests import factories
from tests.conftest import PASSWORD, api_client_for, make_user
from workflow import services as wf

pytestmark = pytest.mark.django_db

APPROVERS = [
    "it_manager",
    "operations_manager",
    "cio",
    "plant_director",
    "key_user",
    "release_manager",
    "admin",
]
START = datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC)


@pytest.fixture(autouse=True)
def mfa_on(settings):
    settings.MFA_REQUIRED_ROLES = APPROVERS


@pytest.fixture
def moment():
    """The clock, frozen; `moment.shift(timedelta(seconds=30))` moves to the next code."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    """An authenticator and recovery codes, as the enrolment page leaves them."""
    device = TOTPDevice.objects.create(user=user, name=mfa.DEVICE_NAME, confirmed=True)
    return device, mfa._new_recovery_codes(user)


def sign_in(user, password: str = PASSWORD) -> Client:
    """The first step only: the password form."""
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert response.status_code == 302, response.content
    return client


def verified(user, device, moment) -> Client:
    """Both steps; the clock then moves on so the next code is a fresh one."""
    client = sign_in(user)
    assert client.post("/accounts/mfa/verify/", {"otp_code": code(device)}).status_code == 302
    moment.shift(timedelta(seconds=30))
    return client


def actions(user) -> list[str]:
    return list(
        AuditEvent.objects.filter(actor_name=user.username, action__startswith="accounts.mfa.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


# --- Enrolment --------------------------------------------------------------------------------------
def test_a_required_role_without_a_device_is_sent_to_enrolment_before_anything_else(cast):
    client = sign_in(cast["itmanager"])
    for path in ("/", "/approvals/", "/rfcs/", "/accounts/mfa/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/setup/"), path
    assert client.get("/approvals/")["Location"] == "/accounts/mfa/setup/?next=%2Fapprovals%2F"
    # What stays open: the enrolment page, the health check, static files, logging out.
    assert client.get("/accounts/mfa/setup/").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/static/css/portal.css").status_code != 302  # not sent to enrolment
    # A session's API call is refused until the second step; a token is not a session.
    api = client.get("/api/v1/rfcs/")
    assert api.status_code == 403 and api.json()["code"] == "mfa_required"
    assert api_client_for(cast["itmanager"]).get("/api/v1/rfcs/").status_code == 200
    # Another Authorization scheme does not let the half-signed-in session through.
    assert client.get("/api/v1/rfcs/", HTTP_AUTHORIZATION="Basic eDp5").status_code in (401, 403)
    assert client.post("/accounts/logout/").status_code == 302
    # A role the setting does not name (a developer) goes straight in.
    assert sign_in(cast["dev"]).get("/").status_code == 200


def test_enrol_with_the_qr_code_and_a_current_code_then_recovery_codes_once(cast, moment):
    user = cast["itmanager"]
    client = sign_in(user)
    page = client.get("/accounts/mfa/setup/?next=/approvals/")
    body = page.content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert page.status_code == 200 and "<svg" in body and "Code from your authenticator app" in body
    assert mfa.secret_text(device) in body  # for typing by hand
    assert client.get("/accounts/mfa/setup/").context["secret"] == mfa.secret_text(
        device
    )  # same secret on reload

    wrong = client.post("/accounts/mfa/setup/", {"otp_code": "000000", "next": "/approvals/"})
    assert wrong.status_code == 400 and "not correct" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert client.get("/").status_code == 302  # still not in

    moment.shift(timedelta(seconds=2))  # past django-otp's one-second throttle after a wrong code
    done = client.post("/accounts/mfa/setup/", {"otp_code": code(device), "next": "/approvals/"})
    assert (
        done.status_code == 302 and done["Location"] == "/accounts/mfa/recovery-codes/?next=%2Fapprovals%2F"
    )
    device.refresh_from_db()
    assert device.confirmed
    shown = client.get(done["Location"])
    codes = shown.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(c in shown.content.decode() for c in codes)
    assert sorted(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == sorted(
        codes
    )
    again = client.get("/accounts/mfa/recovery-codes/")  # shown once
    assert again.status_code == 302 and again["Location"] == "/accounts/mfa/"
    assert client.get("/approvals/").status_code == 200  # the session is verified
    assert actions(user) == ["accounts.mfa.failed", "accounts.mfa.enrolled"]


def test_a_voluntary_user_may_enrol_and_is_then_asked_for_the_code(cast, moment):
    user = cast["dev"]
    client = sign_in(user)
    assert client.get("/accounts/mfa/").status_code == 200
    device = mfa.pending_device(user)
    assert client.post("/accounts/mfa/setup/", {"otp_code": code(device)}).status_code == 302
    moment.shift(timedelta(seconds=30))
    again = sign_in(user)
    assert again.get("/")["Location"] == "/accounts/mfa/verify/?next=%2F"


# --- Sign-in ----------------------------------------------------------------------------------------
def test_sign_in_with_the_password_then_the_code_a_wrong_code_is_refused_and_audited(cast, moment):
    user = cast["itmanager"]
    device, _ = enrol(user)
    client = sign_in(user)
    assert client.get("/approvals/")["Location"] == "/accounts/mfa/verify/?next=%2Fapprovals%2F"
    verify = client.get("/accounts/mfa/verify/?next=/approvals/")
    assert verify.status_code == 200 and 'autocomplete="one-time-code"' in verify.content.decode()
    assert 'data-nav="' not in verify.content.decode()  # no navigation before the second step

    wrong = client.post(
        "/accounts/mfa/verify/", {"otp_code": code(device, steps_ahead=5), "next": "/approvals/"}
    )
    assert wrong.status_code == 400 and "not correct" in wrong.content.decode()
    assert client.get("/approvals/").status_code == 302
    failed = AuditEvent.objects.get(action="accounts.mfa.failed")
    assert failed.actor_name == "itmanager" and failed.reason == "wrong code"
    assert failed.after == {"step": "sign-in", "method": "totp"}

    # Right after a wrong code, even the right one waits (django-otp's growing delay).
    assert client.post("/accounts/mfa/verify/", {"otp_code": code(device)}).status_code == 400
    moment.shift(timedelta(seconds=5))
    ok = client.post("/accounts/mfa/verify/", {"otp_code": code(device), "next": "/approvals/"})
    assert ok.status_code == 302 and ok["Location"] == "/approvals/"
    assert client.get("/approvals/").status_code == 200
    assert actions(user)[-1] == "accounts.mfa.verified"
    # A link to somewhere else is not followed.
    assert client.post("/accounts/mfa/verify/", {"next": "https://evil.example/"})["Location"] == "/"


def test_a_recovery_code_signs_in_once(cast, moment):
    user = cast["itmanager"]
    _, codes = enrol(user)
    client = sign_in(user)
    ok = client.post("/accounts/mfa/verify/", {"otp_code": codes[3].upper(), "next": "/"})
    assert ok.status_code == 302 and client.get("/").status_code == 200
    used = AuditEvent.objects.get(action="accounts.mfa.recovery_used")
    assert used.after == {"remaining": 9}
    client.post("/accounts/logout/")

    moment.shift(timedelta(minutes=5))
    again = sign_in(user)
    refused = again.post("/accounts/mfa/verify/", {"otp_code": codes[3]})
    assert refused.status_code == 400 and "works once" in refused.content.decode()
    assert again.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="accounts.mfa.failed", after__method="recovery").count() == 1


def test_new_recovery_codes_replace_the_old_ones(cast, moment):
    user = cast["itmanager"]
    device, old = enrol(user)
    client = verified(user, device, moment)
    made = client.post("/accounts/mfa/recovery-codes/regenerate/")
    assert made["Location"] == "/accounts/mfa/recovery-codes/"
    new = client.get(made["Location"]).context["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert StaticDevice.objects.filter(user=user).count() == 1
    assert actions(user)[-1] == "accounts.mfa.recovery_regenerated"


def test_an_unverified_session_cannot_make_recovery_codes(cast):
    user = cast["itmanager"]
    enrol(user)
    client = sign_in(user)
    response = client.post("/accounts/mfa/recovery-codes/regenerate/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/verify/")
    assert "accounts.mfa.recovery_regenerated" not in actions(user)


# --- Signatures -------------------------------------------------------------------------------------
@pytest.fixture
def people(cast):
    return {**cast, "opsmanager": make_user("opsmanager", Role.OPERATIONS_MANAGER)}


def pending_for(people, site, version: str = "1.0.1") -> Approval:
    rfc = factories.ready_rfc(people["dev"], people["tester"], site, version=version)
    wf.submit(people["dev"], rfc)
    return Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING, role=Role.IT_MANAGER)


def refusals() -> list[str]:
    return list(
        AuditEvent.objects.filter(action="approvals.signature.refused")
        .order_by("seq")
        .values_list("reason", flat=True)
    )


def test_signing_on_the_page_needs_the_password_and_a_fresh_code(people, site_a, site_b, moment):
    user = people["itmanager"]
    first, second = pending_for(people, site_a), pending_for(people, site_b, "1.0.2")
    device, _ = enrol(user)
    client = sign_in(user)
    signed_in_with = code(device)
    assert client.post("/accounts/mfa/verify/", {"otp_code": signed_in_with}).status_code == 302
    page = client.get(f"/approvals/{first.pk}/").content.decode()
    assert 'name="otp_code"' in page and 'name="password"' in page

    def sign(approval, **fields):
        return client.post(
            f"/approvals/{approval.pk}/", {"decision": "approve", "password": PASSWORD, **fields}
        )

    missing = sign(first)
    assert missing.status_code == 403 and "current code" in missing.content.decode()
    assert 'class="field has-error"><label for="id_otp_code"' in missing.content.decode()
    reused = sign(first, otp_code=signed_in_with)  # the code that signed in
    assert reused.status_code == 403 and "used already" in reused.content.decode()
    moment.shift(timedelta(seconds=30))
    wrong_password = sign(first, password="nope", otp_code=code(device))
    assert wrong_password.status_code == 403
    assert 'class="field has-error"><label for="id_password"' in wrong_password.content.decode()
    moment.shift(timedelta(seconds=2))
    wrong = sign(first, otp_code=code(device, steps_ahead=4))
    assert wrong.status_code == 403 and "not correct" in wrong.content.decode()
    assert not Signature.objects.exists()

    moment.shift(timedelta(seconds=30))
    fresh = code(device)
    ok = sign(first, otp_code=fresh)
    assert ok.status_code == 302 and Signature.objects.filter(approval=first, signer=user).exists()
    again = sign(second, otp_code=fresh)  # the same code, a second signature, same window
    assert again.status_code == 403 and "used already" in again.content.decode()
    assert not Signature.objects.filter(approval=second).exists()
    assert refusals() == [
        "missing code",
        "code already used",
        "wrong password",
        "wrong code",
        "code already used",
    ]


def test_the_page_shows_no_code_field_to_a_signer_without_an_authenticator(people, site_a, settings):
    settings.MFA_REQUIRED_ROLES = []
    approval = pending_for(people, site_a)
    client = sign_in(people["itmanager"])
    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert 'name="password"' in page and 'name="otp_code"' not in page
    assert (
        client.post(f"/approvals/{approval.pk}/", {"decision": "approve", "password": PASSWORD}).status_code
        == 302
    )


def test_signing_through_the_api_needs_a_fresh_code(people, site_a, site_b, moment):
    user = people["itmanager"]
    first, second = pending_for(people, site_a), pending_for(people, site_b, "1.0.2")
    device, _ = enrol(user)
    api = api_client_for(user)

    def approve(approval, **fields):
        return api.post(
            f"/api/v1/approvals/{approval.pk}/approve/", {"password": PASSWORD, **fields}, format="json"
        )

    missing = approve(first)
    assert missing.status_code == 403 and missing.json()["code"] == "permission_denied"
    assert "current code" in missing.json()["detail"]
    wrong = approve(first, otp_code=code(device, steps_ahead=4))
    assert wrong.status_code == 403 and "not correct" in wrong.json()["detail"]
    moment.shift(timedelta(seconds=5))
    fresh = code(device)
    assert approve(first, otp_code=fresh).status_code == 201
    reused = approve(second, otp_code=fresh)
    assert reused.status_code == 403 and "used already" in reused.json()["detail"]
    moment.shift(timedelta(seconds=30))
    assert approve(second, otp_code=code(device)).status_code == 201
    assert refusals() == ["missing code", "wrong code", "code already used"]
    event = AuditEvent.objects.filter(action="approvals.signature.refused").last()
    assert event.actor_name == "itmanager" and event.after == {"decision": "approve", "via": "api"}


def test_a_waiver_needs_the_code_too(cast, site_a, moment):
    user = cast["releasemgr"]
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    Environment.objects.filter(site=site_a, tier=Tier.UAT).update(data_refreshed_at=None)
    device, _ = enrol(user)
    api = api_client_for(user)
    body = {"gate": "UAT data fresh", "reason": "Restore booked tonight.", "password": PASSWORD}
    refused = api.post(f"/api/v1/rfcs/{rfc.uuid}/waivers/", body, format="json")
    assert refused.status_code == 400 and "current code" in str(refused.json())
    assert AuditEvent.objects.get(action="releases.gate.waiver_refused").reason == "missing code"
    page = verified(user, device, moment).get(f"/rfcs/{rfc.uuid}/").content.decode()
    assert 'id="waive-code-uat-data-fresh" name="otp_code"' in page and 'name="password"' in page
    ok = api.post(f"/api/v1/rfcs/{rfc.uuid}/waivers/", {**body, "otp_code": code(device)}, format="json")
    assert ok.status_code == 201, ok.json()


def test_a_single_sign_on_user_signs_with_the_code_alone(people, site_a, moment, settings):
    user = people["itmanager"]
    user.set_unusable_password()
    user.save()
    approval = pending_for(people, site_a)
    assert mfa.signs_with_code_only(user)
    api = api_client_for(user)
    url = f"/api/v1/approvals/{approval.pk}/approve/"
    not_enrolled = api.post(url, {}, format="json")
    assert not_enrolled.status_code == 403 and "set up two-step sign-in" in not_enrolled.json()["detail"]
    device, _ = enrol(user)
    assert api.post(url, {"otp_code": code(device)}, format="json").status_code == 201
    # A directory (LDAP) user's password is the directory's, and is asked again.
    DirectoryIdentity.objects.create(user=user, source=DirectorySource.LDAP, subject="uuid-of-itmanager")
    assert not mfa.signs_with_code_only(user)
    assert mfa.signature_fields(user) == mfa.SignatureFields(password=True, code=True)


# --- Administration ---------------------------------------------------------------------------------
def test_an_admin_resets_a_users_mfa_with_a_reason(cast, settings):
    settings.MFA_REQUIRED_ROLES = ["it_manager"]  # the admin's own session needs no second step here
    user = cast["itmanager"]
    enrol(user)
    admin = Client()
    admin.force_login(cast["admin"])
    url = "/admin/auth/user/"
    chosen = {"action": "reset_mfa", "_selected_action": [user.pk]}
    confirm = admin.post(url, chosen)
    assert confirm.status_code == 200 and "Reason (recorded in the audit trail)" in confirm.content.decode()
    no_reason = admin.post(url, {**chosen, "mfa_reset_confirm": "1", "mfa_reset_reason": " "})
    assert no_reason.status_code == 200 and TOTPDevice.objects.filter(user=user).exists()
    done = admin.post(
        url, {**chosen, "mfa_reset_confirm": "1", "mfa_reset_reason": "Phone lost, ticket 4711."}
    )
    assert done.status_code == 302
    assert (
        not TOTPDevice.objects.filter(user=user).exists()
        and not StaticDevice.objects.filter(user=user).exists()
    )
    event = AuditEvent.objects.get(action="accounts.mfa.reset")
    assert event.actor_name == "admin" and event.reason == "Phone lost, ticket 4711."
    assert event.object_id == str(user.pk) and event.after == {"had_device": True}
    # Their next sign-in asks them to enrol again.
    assert sign_in(user).get("/")["Location"].startswith("/accounts/mfa/setup/")
    # Someone without the Admin role cannot.
    enrol(user)
    other = Client()
    other.force_login(cast["dev"])
    assert other.post(url, {**chosen, "mfa_reset_confirm": "1", "mfa_reset_reason": "x"}).status_code == 302
    assert TOTPDevice.objects.filter(user=user).exists()


def test_the_role_setting_names_real_roles_and_defaults_to_the_approvers():
    import subprocess
    import sys

    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='changecontrol.settings'; "
        "from django.conf import settings; print(','.join(settings.MFA_REQUIRED_ROLES))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MFA_REQUIRED_ROLES"}
    default = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert default.stdout.strip().split(",") == APPROVERS
    empty = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, "MFA_REQUIRED_ROLES": ""},
        check=True,
    )
    assert empty.stdout.strip() == ""
    bad = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, "MFA_REQUIRED_ROLES": "cio,boss"},
    )
    assert bad.returncode != 0 and "MFA_REQUIRED_ROLES names unknown roles: boss" in bad.stderr


def test_audit_labels_name_each_mfa_event():
    from audit.actions import label

    for action in ("enrolled", "verified", "failed", "recovery_used", "reset", "recovery_regenerated"):
        assert not label(f"accounts.mfa.{action}").startswith("accounts.")


def test_the_new_users_session_is_not_the_old_one(cast, moment):
    """Verifying changes the session key (the session's privilege changed)."""
    user = cast["itmanager"]
    device, _ = enrol(user)
    client = sign_in(user)
    before = client.cookies["sessionid"].value
    client.post("/accounts/mfa/verify/", {"otp_code": code(device)})
    assert client.cookies["sessionid"].value != before
    assert re.fullmatch(r"[a-z0-9]+", client.cookies["sessionid"].value)
    assert User.objects.get(pk=user.pk).last_login is not None


def test_the_email_link_asks_for_the_code_after_sign_in_and_on_the_signature(
    people, site_a, moment, settings, monkeypatch
):
    """A5: the link leads through sign-in and the code page back to itself; its form asks for the code."""
    from django.core import mail as django_mail

    from approvals import mail

    monkeypatch.setattr("approvals.mail.after_commit", lambda send: send())  # no commit in this test
    settings.SITE_URL = "https://portal.plant.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = people["itmanager"]
    device, _ = enrol(user)
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    mail.send_notifications()
    message = next(m for m in django_mail.outbox if m.to == ["itmanager@plant.test"])
    path = re.search(r"https://portal\.plant\.example(/approvals/link/[\w-]+/)", message.body).group(1)

    client = Client()
    login = client.post("/accounts/login/", {"username": "itmanager", "password": PASSWORD, "next": path})
    assert login["Location"] == path
    assert client.get(path)["Location"] == f"/accounts/mfa/verify/?next={path.replace('/', '%2F')}"
    assert client.post("/accounts/mfa/verify/", {"otp_code": code(device), "next": path})["Location"] == path
    assert 'name="otp_code"' in client.get(path).content.decode()
    moment.shift(timedelta(seconds=30))
    refused = client.post(path, {"decision": "approve", "password": PASSWORD})
    assert refused.status_code == 403 and not Signature.objects.exists()
    signed = client.post(path, {"decision": "approve", "password": PASSWORD, "otp_code": code(device)})
    assert signed.status_code == 302 and Signature.objects.get().via == "email"
