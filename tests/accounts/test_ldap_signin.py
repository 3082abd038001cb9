"""LDAP sign-in on the login page against a real slapd started by the test: just-in-time users,
group → role mapping per site, revocation when a group is gone, wrong passwords, a directory that is
down (while a local break-glass admin still signs in)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import DirectoryGrant, DirectoryGroupMapping, DirectoryIdentity
from audit.models import AuditEvent
from core.roles import Role
from environments import access
from tests.accounts.slapd import BIND_DN, BIND_PW, GROUPS, PEOPLE, Slapd, free_port
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.ldap

BACKENDS = [
    "accounts.backends.LocalPasswordBackend",
    "guardian.backends.ObjectPermissionBackend",
    "accounts.ldap_auth.PortalLDAPBackend",
]


@pytest.fixture
def slapd():
    server = Slapd().start()
    yield server
    server.stop()


@pytest.fixture
def ldap_settings(settings, slapd):
    settings.AUTHENTICATION_BACKENDS = BACKENDS
    settings.LDAP_SERVER_URI = slapd.uri
    settings.LDAP_BIND_DN = BIND_DN
    settings.LDAP_BIND_PASSWORD = BIND_PW
    settings.LDAP_USER_SEARCH_BASE = PEOPLE
    settings.LDAP_USER_SEARCH_FILTER = "(uid=%(user)s)"
    settings.LDAP_USER_DN_TEMPLATE = ""
    settings.LDAP_GROUP_SEARCH_BASE = GROUPS
    settings.LDAP_GROUP_TYPE = "groupOfNames"
    return settings


@pytest.fixture
def directory(slapd, site_a, site_b):
    """alice in mes-release (release manager everywhere) and qa-pla (IT manager at PLA only)."""
    alice = slapd.add_user("alice", "alice-ldap-pw", "Alice", "Anders")
    bob = slapd.add_user("bob", "bob-ldap-pw", "Bob", "Berg")
    groups = {
        "mes-release": slapd.add_group("mes-release", [alice]),
        "qa-pla": slapd.add_group("qa-pla", [alice, bob]),
    }
    DirectoryGroupMapping.objects.create(source="ldap", group="mes-release", role=Role.RELEASE_MANAGER)
    DirectoryGroupMapping.objects.create(source="ldap", group="qa-pla", role=Role.IT_MANAGER, site=site_a)
    # An OIDC mapping of the same name must not apply to LDAP users.
    DirectoryGroupMapping.objects.create(source="oidc", group="qa-pla", role=Role.ADMIN)
    return {"alice": alice, "bob": bob, "groups": groups}


def login(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def fresh(username: str) -> User:
    user = User.objects.get(username=username)
    access.forget(user)
    return user


def test_ldap_login_creates_the_user_with_mapped_roles_per_site(ldap_settings, directory, site_a, site_b):
    client = Client()
    response = login(client, "alice", "alice-ldap-pw")
    assert response.status_code == 302 and response["Location"] == "/"

    alice = fresh("alice")
    assert (alice.first_name, alice.last_name, alice.email) == ("Alice", "Anders", "alice@plant.test")
    assert not alice.has_usable_password()
    identity = DirectoryIdentity.objects.get(user=alice)
    assert identity.source == "ldap" and identity.subject and identity.last_sync_at is not None
    assert access.has_role(alice, Role.RELEASE_MANAGER)  # every site
    assert access.has_role(alice, Role.IT_MANAGER, site=site_a)
    assert not access.has_role(alice, Role.IT_MANAGER, site=site_b)
    assert not access.has_role(alice, Role.ADMIN, site=site_a)  # the OIDC mapping is not LDAP's

    page = client.get("/")
    assert page.status_code == 200
    assert b"Release manager" in page.content and b"IT Manager" in page.content

    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("accounts.directory.role_granted") == 2
    assert "accounts.directory.user_created" in actions
    assert "accounts.directory.signed_in" in actions
    assert "accounts.login.succeeded" in actions
    granted = AuditEvent.objects.filter(action="accounts.directory.role_granted", site_code="PLA").get()
    assert granted.after["role"] == "it_manager" and granted.after["groups"] == ["qa-pla"]


def test_a_group_removed_in_the_directory_revokes_the_role_at_next_login(
    ldap_settings, directory, slapd, site_a
):
    assert login(Client(), "alice", "alice-ldap-pw").status_code == 302
    slapd.remove_member(directory["groups"]["qa-pla"], directory["alice"])

    assert login(Client(), "alice", "alice-ldap-pw").status_code == 302
    alice = fresh("alice")
    assert not access.has_role(alice, Role.IT_MANAGER, site=site_a)
    assert access.has_role(alice, Role.RELEASE_MANAGER)
    revoked = AuditEvent.objects.get(action="accounts.directory.role_revoked")
    assert revoked.after["role"] == "it_manager" and revoked.site_code == "PLA"
    assert set(DirectoryGrant.objects.values_list("role", flat=True)) == {"release_manager"}


def test_a_role_granted_by_hand_is_never_revoked_by_the_sync(ldap_settings, directory, slapd, site_a):
    from guardian.shortcuts import assign_perm

    assert login(Client(), "bob", "bob-ldap-pw").status_code == 302
    bob = fresh("bob")
    assign_perm(Role.AUDITOR.codename, bob, site_a)  # by hand, outside the directory
    slapd.remove_member(directory["groups"]["qa-pla"], directory["bob"])

    assert login(Client(), "bob", "bob-ldap-pw").status_code == 302
    bob = fresh("bob")
    assert not access.has_role(bob, Role.IT_MANAGER, site=site_a)
    assert access.has_role(bob, Role.AUDITOR, site=site_a)


def test_a_renamed_directory_account_keeps_its_user(ldap_settings, directory, slapd):
    assert login(Client(), "alice", "alice-ldap-pw").status_code == 302
    first = User.objects.get(username="alice")
    slapd.rename_user("alice", "alice.anders")

    assert login(Client(), "alice.anders", "alice-ldap-pw").status_code == 302
    assert User.objects.get(username="alice.anders").pk == first.pk
    assert User.objects.filter(username="alice").count() == 0


def test_wrong_ldap_password_is_refused_and_audited(ldap_settings, directory):
    client = Client()
    response = login(client, "alice", "not-her-password")
    assert response.status_code == 200
    assert b"correct username and password" in response.content
    assert not User.objects.filter(username="alice").exists()
    assert AuditEvent.objects.filter(action="accounts.login.failed", actor_name="alice").exists()
    assert client.get("/").status_code == 302  # still anonymous


def test_a_directory_account_never_takes_over_a_local_account_of_the_same_name(ldap_settings, directory):
    local = make_user("alice")  # a local account that happens to share the name
    response = login(Client(), "alice", "alice-ldap-pw")
    assert response.status_code == 200
    assert not DirectoryIdentity.objects.filter(user=local).exists()
    assert login(Client(), "alice", PASSWORD).status_code == 302  # the local one still signs in


def test_directory_down_says_so_and_break_glass_admin_still_signs_in(ldap_settings, directory, slapd):
    make_user("breakglass", Role.ADMIN, is_staff=True)
    slapd.stop()
    ldap_settings.LDAP_SERVER_URI = f"ldap://127.0.0.1:{free_port()}"

    response = login(Client(), "alice", "alice-ldap-pw")
    assert response.status_code == 200
    assert b"directory could not be reached" in response.content
    assert not User.objects.filter(username="alice").exists()

    assert login(Client(), "breakglass", PASSWORD).status_code == 302


def test_local_login_breakglass_keeps_passwords_for_staff_only(ldap_settings, directory):
    ldap_settings.LOCAL_LOGIN = "breakglass"
    make_user("breakglass", Role.ADMIN, is_staff=True)
    make_user("localdev", Role.DEVELOPER)
    assert login(Client(), "breakglass", PASSWORD).status_code == 302
    assert login(Client(), "localdev", PASSWORD).status_code == 200
    assert login(Client(), "alice", "alice-ldap-pw").status_code == 302


def test_member_of_group_type_reads_the_users_own_groups(ldap_settings, directory, site_a):
    ldap_settings.LDAP_GROUP_TYPE = "memberOf"
    ldap_settings.LDAP_GROUP_SEARCH_BASE = ""
    assert login(Client(), "alice", "alice-ldap-pw").status_code == 302
    alice = fresh("alice")
    assert access.has_role(alice, Role.RELEASE_MANAGER)
    assert access.has_role(alice, Role.IT_MANAGER, site=site_a)
