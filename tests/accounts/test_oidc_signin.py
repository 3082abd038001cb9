"""OpenID Connect sign-in against a real OpenID Provider (node's oidc-provider, started by the test on
a free port), driven over HTTP through the provider's own login and consent pages: just-in-time
users, group claims mapped to roles per site, revocation when a group is gone, break-glass local
login, and forged or failed answers refused cleanly. The browser journey is in
tests/e2e/test_directory_signin.py."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import DirectoryGrant, DirectoryGroupMapping, DirectoryIdentity
from audit.models import AuditEvent
from core.roles import Role
from environments import access
from tests.accounts import idp
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.oidc


@pytest.fixture
def provider(live_server):
    server = idp._provider(live_server)
    yield server
    server.stop()


@pytest.fixture
def oidc(settings, provider, transactional_db, site_a, site_b):
    idp.configure(settings, provider.issuer)
    DirectoryGroupMapping.objects.create(source="oidc", group="mes-release", role=Role.RELEASE_MANAGER)
    DirectoryGroupMapping.objects.create(source="oidc", group="qa-pla", role=Role.IT_MANAGER, site=site_a)
    DirectoryGroupMapping.objects.create(source="ldap", group="qa-pla", role=Role.ADMIN)  # LDAP's, not OIDC's
    return provider


def _form(html: str, base: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html[:2000]
    return urljoin(base, unescape(match.group(1)))


def sign_in(portal: str, login: str, password: str) -> tuple[requests.Session, requests.Response]:
    """The whole code flow as a browser would follow it: portal → provider login → consent → portal."""
    session = requests.Session()
    page = session.get(f"{portal}/accounts/oidc/start/", timeout=30)
    assert "Secret" in page.text, page.text[:2000]
    page = session.post(_form(page.text, page.url), data={"login": login, "password": password}, timeout=30)
    if "Allow" in page.text and "/confirm" in page.text:
        page = session.post(_form(page.text, page.url), timeout=30)
    return session, page


def fresh(username: str) -> User:
    user = User.objects.get(username=username)
    access.forget(user)
    return user


def test_first_sign_in_creates_the_user_and_maps_groups_to_roles_per_site(oidc, live_server, site_a, site_b):
    session, home = sign_in(live_server.url, "alice", "alice-idp-pw")
    assert home.status_code == 200 and urlparse(home.url).path == "/", home.text[:1500]
    assert "Alice Anders" in home.text and "Release manager" in home.text and "IT Manager" in home.text

    alice = fresh("alice")
    assert (alice.first_name, alice.last_name, alice.email) == ("Alice", "Anders", "alice@plant.test")
    assert not alice.has_usable_password()
    identity = DirectoryIdentity.objects.get(user=alice)
    assert (identity.source, identity.issuer, identity.subject) == ("oidc", oidc.issuer, "00u-alice-7f3a")
    assert access.has_role(alice, Role.RELEASE_MANAGER)
    assert access.has_role(alice, Role.IT_MANAGER, site=site_a)
    assert not access.has_role(alice, Role.IT_MANAGER, site=site_b)
    assert not access.has_role(alice, Role.ADMIN)  # the LDAP mapping does not apply

    events = list(AuditEvent.objects.values_list("action", flat=True))
    assert events.count("accounts.directory.role_granted") == 2
    assert {
        "accounts.directory.user_created",
        "accounts.directory.signed_in",
        "accounts.login.succeeded",
    } <= set(events)
    signed_in = AuditEvent.objects.get(action="accounts.directory.signed_in")
    assert signed_in.after["groups"] == ["mes-release", "qa-pla"] and signed_in.actor_id == alice.pk

    # Logout ends the portal session.
    session.post(
        f"{live_server.url}/accounts/logout/",
        headers={"X-CSRFToken": session.cookies.get("csrftoken", "")},
        data={"csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
        allow_redirects=False,
        timeout=30,
    )
    assert urlparse(session.get(f"{live_server.url}/", timeout=30).url).path == "/accounts/login/"


def test_a_signed_in_user_keeps_working_while_the_provider_is_down(oidc, live_server):
    session, _ = sign_in(live_server.url, "alice", "alice-idp-pw")
    oidc.stop()
    from accounts import oidc as portal_oidc

    portal_oidc._discovery.clear()  # as in a freshly started process
    home = session.get(f"{live_server.url}/", timeout=30)
    assert home.status_code == 200 and urlparse(home.url).path == "/"
    assert Client().post("/accounts/login/", {"username": "alice", "password": "x"}).status_code == 200


def test_a_group_gone_from_the_claims_revokes_its_role_at_next_sign_in(oidc, live_server, site_a):
    sign_in(live_server.url, "alice", "alice-idp-pw")
    oidc.set_groups("alice", ["mes-release"])

    _, home = sign_in(live_server.url, "alice", "alice-idp-pw")
    assert urlparse(home.url).path == "/"
    alice = fresh("alice")
    assert not access.has_role(alice, Role.IT_MANAGER, site=site_a)
    assert access.has_role(alice, Role.RELEASE_MANAGER)
    assert User.objects.filter(email="alice@plant.test").count() == 1
    revoked = AuditEvent.objects.get(action="accounts.directory.role_revoked")
    assert (revoked.after["role"], revoked.site_code) == ("it_manager", "PLA")
    assert list(DirectoryGrant.objects.values_list("role", "site")) == [("release_manager", None)]


def test_a_renamed_account_keeps_its_user_and_never_takes_a_local_name(oidc, live_server):
    local = make_user("bob")  # a local account named like the provider's bob
    sign_in(live_server.url, "bob", "bob-idp-pw")
    directory_bob = DirectoryIdentity.objects.get(subject="00u-bob-91c2").user
    assert directory_bob.pk != local.pk and directory_bob.username == "bob-2"
    assert local.check_password(PASSWORD)

    oidc.users["bob"]["preferred_username"] = "robert"
    oidc.write()
    sign_in(live_server.url, "bob", "bob-idp-pw")
    assert DirectoryIdentity.objects.get(subject="00u-bob-91c2").user.pk == directory_bob.pk
    assert DirectoryIdentity.objects.count() == 1


def test_wrong_provider_password_stays_on_the_providers_page(oidc, live_server):
    _, page = sign_in(live_server.url, "alice", "wrong")
    assert "Wrong login or secret" in page.text
    assert not User.objects.filter(email="alice@plant.test").exists()


def test_local_break_glass_admin_still_signs_in_with_a_password(oidc):
    make_user("breakglass", Role.ADMIN, is_staff=True)
    client = Client()
    page = client.get("/accounts/login/")
    assert f"Sign in with {idp.DISPLAY_NAME}".encode() in page.content
    assert (
        client.post("/accounts/login/", {"username": "breakglass", "password": PASSWORD}).status_code == 302
    )
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "answer",
    [
        "forged-state",  # a state this browser never started
        "no-session",  # a callback with no sign-in started at all
        "bad-code",  # the right state, a code the provider never issued
        "provider-error",  # the provider says access_denied
        "no-code",
    ],
)
def test_a_forged_or_failed_answer_is_refused_cleanly(oidc, live_server, answer):
    session = requests.Session()
    callback = f"{live_server.url}/accounts/oidc/callback/"
    if answer == "no-session":
        response = session.get(
            callback, params={"code": "x", "state": "y"}, allow_redirects=False, timeout=30
        )
    else:
        start = session.get(f"{live_server.url}/accounts/oidc/start/", allow_redirects=False, timeout=30)
        state = parse_qs(urlparse(start.headers["Location"]).query)["state"][0]
        params = {
            "forged-state": {"code": "x", "state": "forged" + state},
            "bad-code": {"code": "not-a-code-the-provider-issued", "state": state},
            "provider-error": {"error": "access_denied", "state": state},
            "no-code": {"state": state},
        }[answer]
        response = session.get(callback, params=params, allow_redirects=False, timeout=30)
    assert response.status_code == 302 and response.headers["Location"] == "/accounts/login/"
    page = session.get(f"{live_server.url}/accounts/login/", timeout=30)
    assert page.status_code == 200 and f"Sign-in with {idp.DISPLAY_NAME} failed" in page.text
    assert not User.objects.filter(directory_identities__isnull=False).exists()
    assert AuditEvent.objects.filter(action="accounts.directory.sign_in_failed").count() == 1
    assert urlparse(session.get(f"{live_server.url}/", timeout=30).url).path == "/accounts/login/"


def test_a_replayed_callback_is_refused(oidc, live_server):
    """The state is single-use: the same provider answer sent twice signs in once."""
    session = requests.Session()
    start = session.get(f"{live_server.url}/accounts/oidc/start/", timeout=30)
    page = session.post(
        _form(start.text, start.url),
        data={"login": "alice", "password": "alice-idp-pw"},
        allow_redirects=True,
        timeout=30,
    )
    # Stop just before the portal: take the provider's redirect to the callback by hand.
    confirm = session.post(_form(page.text, page.url), allow_redirects=False, timeout=30)
    location = confirm.headers["Location"]
    while not location.startswith(f"{live_server.url}/accounts/oidc/callback/"):
        location = urljoin(
            location, session.get(location, allow_redirects=False, timeout=30).headers["Location"]
        )
    assert session.get(location, allow_redirects=False, timeout=30).headers["Location"] == "/"
    replay = session.get(location, allow_redirects=False, timeout=30)
    assert replay.status_code == 302 and replay.headers["Location"] == "/accounts/login/"
