"""The group → role sync that OpenID Connect and LDAP share (no directory needed): what it grants,
what it takes back, what it never touches, and the mapping's administration."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from guardian.shortcuts import assign_perm

from accounts import directory
from accounts.models import DirectoryGrant, DirectoryGroupMapping
from audit.models import AuditEvent
from core.roles import Role
from environments import access
from environments.roles_setup import ensure_role_groups
from tests.accounts import idp
from tests.accounts.slapd import free_port
from tests.conftest import client_for, make_user


@pytest.fixture
def mappings(db, site_a, site_b):
    DirectoryGroupMapping.objects.create(source="oidc", group="MES-Release", role=Role.RELEASE_MANAGER)
    DirectoryGroupMapping.objects.create(source="oidc", group="qa-pla", role=Role.IT_MANAGER, site=site_a)
    DirectoryGroupMapping.objects.create(
        source="ldap", group="cn=ops,ou=groups,dc=plant,dc=test", role=Role.RELEASE_MANAGER
    )


def roles(user) -> dict:
    access.forget(user)
    return {key: set(value) for key, value in access.role_map(user).items()}


def test_groups_match_case_insensitively_and_per_site(mappings, site_a):
    user = make_user("carol")
    granted, revoked = directory.sync_roles(user, "oidc", ["mes-release", "QA-PLA", "unmapped"])
    assert {(role, site.code if site else None) for role, site in granted} == {
        (Role.RELEASE_MANAGER, None),
        (Role.IT_MANAGER, "PLA"),
    }
    assert revoked == []
    assert roles(user) == {None: {Role.RELEASE_MANAGER}, site_a.pk: {Role.IT_MANAGER}}
    # Idempotent: the same groups again change nothing and audit nothing.
    before = AuditEvent.objects.count()
    assert directory.sync_roles(user, "oidc", ["mes-release", "qa-pla"]) == ([], [])
    assert AuditEvent.objects.count() == before


def test_a_role_held_by_hand_is_neither_recorded_nor_revoked(mappings, site_a):
    user = make_user("dora", Role.RELEASE_MANAGER)  # by hand, through the role group
    assign_perm(Role.IT_MANAGER.codename, user, site_a)  # by hand, at one site
    directory.sync_roles(user, "oidc", ["mes-release", "qa-pla"])
    assert not DirectoryGrant.objects.filter(user=user).exists()
    directory.sync_roles(user, "oidc", [])
    assert roles(user) == {None: {Role.RELEASE_MANAGER}, site_a.pk: {Role.IT_MANAGER}}
    assert not AuditEvent.objects.filter(action__startswith="accounts.directory.role_").exists()


def test_two_directories_granting_one_role_keep_it_until_both_drop_it(mappings):
    user = make_user("erin")
    directory.sync_roles(user, "oidc", ["mes-release"])
    directory.sync_roles(user, "ldap", ["ops", "cn=ops,ou=groups,dc=plant,dc=test"])
    assert DirectoryGrant.objects.filter(user=user).count() == 2
    directory.sync_roles(user, "oidc", [])
    assert Role.RELEASE_MANAGER in roles(user)[None]  # LDAP still grants it
    directory.sync_roles(user, "ldap", [])
    assert roles(user) == {}
    assert AuditEvent.objects.filter(action="accounts.directory.role_revoked").count() == 1
    assert not user.groups.filter(pk=ensure_role_groups()[Role.RELEASE_MANAGER].pk).exists()


def test_a_role_granted_by_the_directory_is_revoked_even_if_the_group_was_renamed(mappings, site_a):
    user = make_user("finn")
    directory.sync_roles(user, "oidc", ["qa-pla"])
    DirectoryGroupMapping.objects.filter(group="qa-pla").update(group="qa-plant-a")
    directory.sync_roles(user, "oidc", ["qa-pla"])
    assert roles(user) == {}
    event = AuditEvent.objects.get(action="accounts.directory.role_revoked")
    assert event.after == {
        "user": "finn",
        "role": "it_manager",
        "site": "PLA",
        "source": "oidc",
        "groups": [],
    }
    assert event.actor_name == "directory sync (OpenID Connect)"


def test_the_mapping_is_edited_in_the_portal_admin_with_an_audited_reason(cast, site_a):
    client = client_for(cast["admin"])
    response = client.post(
        "/admin/accounts/directorygroupmapping/add/",
        {
            "source": "oidc",
            "group": "plant-a-it",
            "role": "it_manager",
            "site": site_a.pk,
            "audit_reason": "SSO go-live",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    mapping = DirectoryGroupMapping.objects.get(group="plant-a-it")
    assert mapping.site == site_a
    event = AuditEvent.objects.get(action="accounts.directorygroupmapping.created")
    assert event.reason == "SSO go-live"
    assert client.get("/admin/accounts/directoryidentity/").status_code == 200
    assert client_for(cast["dev"]).get("/admin/accounts/directorygroupmapping/").status_code in (302, 403)


def test_is_directory_user(mappings):
    local = make_user("gus")
    assert not directory.is_directory_user(local)
    user = User.objects.create(username="hana")
    directory.link_identity(user, "oidc", "https://idp.example", "sub-1", "hana")
    assert directory.is_directory_user(user)


def test_login_page_has_no_button_and_no_endpoints_when_not_configured(db):
    client = Client()
    assert b"Sign in with" not in client.get("/accounts/login/").content
    assert client.get("/accounts/oidc/start/").status_code == 404
    assert client.get("/accounts/oidc/callback/?code=x&state=y").status_code == 404


def test_an_unreachable_provider_is_said_on_the_login_page(settings, transactional_db):
    idp.configure(settings, f"http://127.0.0.1:{free_port()}")
    client = Client()
    response = client.get("/accounts/oidc/start/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert b"could not be reached" in client.get("/accounts/login/").content
