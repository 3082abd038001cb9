"""Approval from an email link (A5), the portal's sign page, the queue, absences, the mailbox and
the approvals API."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.core import mail as django_mail
from django.test import Client

from approvals import mail
from approvals.models import Approval, ApprovalState, EmailLink, Signature
from audit.models import AuditEvent
from core import clock
from core.roles import Role
from releases.models import Release, Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for, make_user
from workflow import services as wf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail_at_once(monkeypatch):
    """These tests run inside one transaction that never commits: send each mail at once instead of
    on commit (tests/approvals/test_approvals.py::test_a_rolled_back_send_mails_nothing covers the commit rule)."""
    monkeypatch.setattr("approvals.mail.after_commit", lambda send: send())


LINK = re.compile(r"(https?://\S+/approvals/link/[\w-]+/)")


@pytest.fixture
def people(cast):
    return {**cast, "opsmanager": make_user("opsmanager", Role.OPERATIONS_MANAGER)}


@pytest.fixture
def requested(people, site_a, settings):
    """A submitted patch RFC whose IT-manager request mail went out; returns (rfc, link url)."""
    settings.SITE_URL = "https://portal.plant.example"
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    mail.send_notifications()
    message = next(m for m in django_mail.outbox if m.to == ["itmanager@plant.test"])
    return rfc, LINK.search(message.body).group(1)


def state_of(rfc) -> tuple:
    """Everything a click must not change."""
    return (
        Rfc.objects.get(pk=rfc.pk).state,
        Signature.objects.count(),
        tuple(EmailLink.objects.order_by("pk").values_list("used_at", flat=True)),
        tuple(Approval.objects.order_by("pk").values_list("state", flat=True)),
    )


def path_of(url: str) -> str:
    return url.removeprefix("https://portal.plant.example")


def test_link_is_random_single_use_and_stored_hashed(requested):
    rfc, url = requested
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert url.startswith("https://portal.plant.example/approvals/link/")  # the configured base URL
    assert len(token) >= 22  # 32 random bytes, url-safe: far above 128 bits
    link = EmailLink.objects.get(user__username="itmanager")
    assert token not in link.token_hash and len(link.token_hash) == 64
    assert (link.expires_at - link.created_at) == timedelta(hours=72)


def test_get_and_head_change_nothing(people, requested):
    """Mail scanners open links: GET and HEAD only show a page."""
    rfc, url = requested
    before = state_of(rfc)
    anonymous = client_for(people["nobody"])
    anonymous.logout()
    for client, status in ((anonymous, 302), (client_for(people["itmanager"]), 200)):
        assert client.get(path_of(url)).status_code == status
        assert client.head(path_of(url)).status_code == status
    assert state_of(rfc) == before


def test_anonymous_goes_straight_to_sign_in_and_comes_back_to_the_decision(people, requested, client):
    """Issue 15: one sign-in on the way, then the decision page; the link is not consumed."""
    rfc, url = requested
    response = client.get(path_of(url))
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(path_of(url), safe='')}"
    assert rfc.title not in response.content.decode()
    signed_in = client.post(
        response["Location"], {"username": "itmanager", "password": PASSWORD}, follow=True
    )
    assert signed_in.redirect_chain[-1][0] == path_of(url)
    page = signed_in.content.decode()
    assert 'data-testid="sign-form"' in page and rfc.title in page
    assert EmailLink.objects.get(user=people["itmanager"]).used_at is None


def test_scanner_like_post_without_password_fails(people, requested):
    rfc, url = requested
    before = state_of(rfc)
    client = client_for(people["itmanager"])
    response = client.post(path_of(url), {"decision": "approve"})
    assert response.status_code == 403
    assert "password" in response.content.decode()
    assert state_of(rfc) == before
    assert AuditEvent.objects.filter(action="approvals.signature.refused").exists()


def test_sign_from_the_link_then_replay_is_refused(people, requested):
    rfc, url = requested
    client = client_for(people["itmanager"])
    page = client.get(path_of(url))
    assert rfc.title in page.content.decode() and 'name="password"' in page.content.decode()
    response = client.post(path_of(url), {"decision": "approve", "password": PASSWORD})
    assert response.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    signature = Signature.objects.get()
    assert signature.via == "email" and signature.signer == people["itmanager"]
    assert EmailLink.objects.get(user=people["itmanager"]).used_at is not None
    replay = client.get(path_of(url))
    assert replay.status_code == 410 and "has been used" in replay.content.decode()
    assert client.post(path_of(url), {"decision": "approve", "password": PASSWORD}).status_code == 410
    assert Signature.objects.count() == 1
    assert AuditEvent.objects.filter(action="approvals.link.used").count() == 2


def test_expired_link(people, requested):
    rfc, url = requested
    with time_machine.travel(clock.now() + timedelta(hours=73)):
        response = client_for(people["itmanager"]).get(path_of(url))
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert AuditEvent.objects.filter(action="approvals.link.expired").exists()


def test_link_of_another_user(people, requested):
    rfc, url = requested
    before = state_of(rfc)
    response = client_for(people["opsmanager"]).post(
        path_of(url), {"decision": "approve", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "sent to someone else" in response.content.decode()
    assert state_of(rfc) == before
    assert AuditEvent.objects.filter(action="approvals.link.other_user").exists()


def test_link_over_stale_content(people, requested):
    """The release behind the RFC was changed after the request: the link no longer fits."""
    rfc, url = requested
    Release.objects.filter(pk=rfc.release_id).update(undo_sql="DROP TABLE orders;")
    response = client_for(people["itmanager"]).get(path_of(url))
    assert response.status_code == 409 and "changed" in response.content.decode()
    assert AuditEvent.objects.filter(action="approvals.link.stale").exists()


def test_unknown_link(client):
    response = client.get("/approvals/link/not-a-real-token/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_guessing_links_locks_the_address_out_like_guessing_passwords(people, requested, settings):
    """FAULTS 33: random tokens are all refused, and after LOCKOUT_FAILURES of them one address is
    locked out (429, audited as a lockout) — even for a real link — while another address is not."""
    rfc, url = requested
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    guesser = Client(HTTP_X_FORWARDED_FOR="203.0.113.9")
    codes = [guesser.get(f"/approvals/link/guess-{n}/").status_code for n in range(settings.LOCKOUT_FAILURES)]
    assert codes == [404] * settings.LOCKOUT_FAILURES
    locked = guesser.get(path_of(url))
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many invalid approval links" in locked.content.decode()
    lock = AuditEvent.objects.get(action="accounts.lockout.locked")
    assert lock.after["entry"] == "approval_link" and lock.after["address"] == "203.0.113.9"
    assert AuditEvent.objects.filter(action="accounts.lockout.refused").exists()
    elsewhere = Client(HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert elsewhere.get(path_of(url)).status_code == 302  # to the sign-in, as before
    assert EmailLink.objects.get(user=people["itmanager"]).used_at is None


def test_portal_sign_page_and_queue(people, requested):
    rfc, _ = requested
    client = client_for(people["itmanager"])
    queue = client.get("/approvals/")
    assert rfc.number in queue.content.decode()
    assert "every 30s" in queue.content.decode()
    approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)
    wrong = client.post(f"/approvals/{approval.pk}/", {"decision": "approve", "password": "nope"})
    assert wrong.status_code == 403 and not Signature.objects.exists()
    no_reason = client.post(f"/approvals/{approval.pk}/", {"decision": "reject", "password": PASSWORD})
    assert no_reason.status_code == 400 and not Signature.objects.exists()
    done = client.post(f"/approvals/{approval.pk}/", {"decision": "approve", "password": PASSWORD})
    assert done.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    assert client_for(people["dev"]).get("/approvals/").content.decode().count("queue-row") == 0


def test_another_sites_approval_is_a_404(people, site_b, requested):
    rfc, _ = requested
    outsider = make_user("itmanager_b", Role.IT_MANAGER, site=site_b)
    approval = Approval.objects.get(rfc=rfc)
    assert client_for(outsider).get(f"/approvals/{approval.pk}/").status_code == 404


def test_absence_page(people, site_a):
    client = client_for(people["itmanager"])
    now = clock.now()
    bad = client.post(
        "/approvals/absence/",
        {"starts_at": now.isoformat(), "ends_at": now.isoformat(), "delegate": "itmanager_a"},
    )
    assert bad.status_code == 400 and "must end after" in bad.content.decode()
    good = client.post(
        "/approvals/absence/",
        {
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=2)).isoformat(),
            "delegate": "itmanager_a",
            "reason": "Training",
        },
    )
    assert good.status_code == 302
    assert AuditEvent.objects.filter(action="approvals.absence.set").exists()
    assert "Itmanager_a" in client.get("/approvals/absence/").content.decode()


def test_mailbox_only_with_debug(people, settings, tmp_path, requested):
    client = client_for(people["admin"])
    settings.DEBUG = False
    assert client.get("/dev/mailbox/").status_code == 404
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path
    rfc, _ = requested
    Approval.objects.filter(rfc=rfc).update(notify_due=True)
    mail.send_notifications()
    page = client.get("/dev/mailbox/").content.decode()
    assert rfc.number in page and "/approvals/link/" in page


@pytest.mark.parametrize("who", ["dev", "itmanager", "releasemgr", "auditor", "admin_a", "nobody"])
def test_mailbox_is_for_global_admins_only(people, settings, tmp_path, who):
    """Everyone's mail (with approval links) is in the mailbox: with DEBUG on, anyone but a global
    admin gets the 404 page, as does an admin with DEBUG off; nobody signed in is sent to log in."""
    settings.DEBUG = True
    settings.EMAIL_FILE_PATH = tmp_path
    (tmp_path / "one.log").write_text(
        "Subject: Secret approval link\nTo: x@plant.test\n\nhttps://x/approvals/link/abc/\n"
    )
    refused = client_for(people[who]).get("/dev/mailbox/")
    assert refused.status_code == 404
    assert "Secret approval link" not in refused.content.decode()
    admin = client_for(people["admin"])
    assert "Secret approval link" in admin.get("/dev/mailbox/").content.decode()
    anonymous = Client().get("/dev/mailbox/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    settings.DEBUG = False
    assert admin.get("/dev/mailbox/").status_code == 404


# --- API -----------------------------------------------------------------------------------------
def test_api_pending_approve_and_reject(people, requested):
    rfc, _ = requested
    api = api_client_for(people["itmanager"])
    listing = api.get("/api/v1/approvals/")
    assert listing.status_code == 200
    rows = listing.json()["results"] if isinstance(listing.json(), dict) else listing.json()
    assert [row["rfc_number"] for row in rows] == [rfc.number]
    approval_id = rows[0]["id"]
    assert api_client_for(people["dev"]).get("/api/v1/approvals/").json() in (
        [],
        {"count": 0, "next": None, "previous": None, "results": []},
    )
    wrong = api.post(f"/api/v1/approvals/{approval_id}/approve/", {"password": "nope"}, format="json")
    assert wrong.status_code == 403 and wrong.json()["code"]
    missing = api.post(f"/api/v1/approvals/{approval_id}/reject/", {"password": PASSWORD}, format="json")
    assert missing.status_code == 400
    ok = api.post(f"/api/v1/approvals/{approval_id}/approve/", {"password": PASSWORD}, format="json")
    assert ok.status_code == 201 and ok.json()["meaning"].startswith("approved as IT Manager")
    again = api.post(f"/api/v1/approvals/{approval_id}/approve/", {"password": PASSWORD}, format="json")
    assert again.status_code == 409
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED


def test_separation_of_duties_is_a_403_said_as_such_not_a_password_error(people, site_a):
    """A6/R9: the UAT signer cannot approve. The page says why, with the right status; the password
    field carries no error because the password was right."""
    both = make_user("keyit", Role.KEY_USER, Role.IT_MANAGER)
    rfc = factories.ready_rfc(people["dev"], both, site_a)
    wf.submit(people["dev"], rfc)
    approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)
    response = client_for(both).post(
        f"/approvals/{approval.pk}/", {"decision": "approve", "password": PASSWORD}
    )
    page = response.content.decode()
    assert response.status_code == 403
    assert "separation of duties" in page and 'class="errorbox"' in page
    assert 'class="field has-error"><label for="id_password"' not in page
    assert not Signature.objects.filter(rfc=rfc).exists()
    wrong = client_for(both).post(f"/approvals/{approval.pk}/", {"decision": "approve", "password": "nope"})
    assert wrong.status_code == 403
    assert 'class="field has-error"><label for="id_password"' in wrong.content.decode()
