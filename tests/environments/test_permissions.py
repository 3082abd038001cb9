"""One place decides who may see and do what (E4, E7)."""

import pytest
from django.db import connection

from audit.models import AuditEvent
from core.roles import Role
from environments import access
from environments.models import Environment, Tier
from tests.conftest import api_client_for, client_for, make_user

pytestmark = pytest.mark.django_db


def test_no_prod_action_is_granted_to_developers():
    """E4: developers have 0% write access to PROD — the rule table itself says so."""
    for action, tiers in access.ENVIRONMENT_ACTIONS.items():
        assert Role.DEVELOPER not in tiers["PROD"], action


def test_developer_cannot_change_prod_anywhere(cast, site_a):
    dev = cast["dev"]
    prod = Environment.objects.get(site=site_a, tier=Tier.PROD)
    for action in access.ENVIRONMENT_ACTIONS:
        assert not access.can(dev, action, prod), action
    # The page refuses with 403 and changes nothing.
    client = client_for(dev)
    assert client.get(f"/environments/{site_a.code}/PROD/edit/").status_code == 403
    response = client.post(
        f"/environments/{site_a.code}/PROD/edit/",
        {"purpose": "hacked", "version_0": "9.9.9", "reason": "x"},
    )
    assert response.status_code == 403
    # The API refuses with 403 and changes nothing.
    api = api_client_for(dev)
    response = api.patch(
        f"/api/v1/environments/{prod.pk}/", {"active_version": "9.9.9", "reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    prod.refresh_from_db()
    assert prod.active_version == "1.0.0" and prod.purpose != "hacked"


def test_developer_may_record_a_dev_version(cast, site_a):
    dev_env = Environment.objects.get(site=site_a, tier=Tier.DEV)
    assert access.can(cast["dev"], "set_version", dev_env)
    assert access.can(cast["dev"], "deploy", dev_env)
    assert not access.can(cast["dev"], "configure", dev_env)


def test_site_scoped_role_does_not_reach_the_other_site(cast, site_a, site_b):
    manager = cast["itmanager_a"]
    assert access.has_role(manager, Role.IT_MANAGER, site_a)
    assert not access.has_role(manager, Role.IT_MANAGER, site_b)
    assert not access.has_role(manager, Role.IT_MANAGER)  # not a global role
    assert list(access.visible_sites(manager)) == [site_a]
    # The global IT manager holds the role at both.
    assert access.has_role(cast["itmanager"], Role.IT_MANAGER, site_b)


def test_other_sites_objects_are_404_not_403(cast, site_a, site_b):
    client = client_for(cast["itmanager_a"])
    assert client.get(f"/environments/{site_a.code}/PROD/").status_code == 200
    assert client.get(f"/environments/{site_b.code}/PROD/").status_code == 404
    api = api_client_for(cast["itmanager_a"])
    other = Environment.objects.get(site=site_b, tier=Tier.PROD)
    assert api.get(f"/api/v1/environments/{other.pk}/").status_code == 404
    codes = {row["site"] for row in api.get("/api/v1/environments/").json()["results"]}
    assert codes == {site_a.code}
    assert api.get(f"/api/v1/sites/{site_b.code}/").status_code == 404


def test_site_scoped_admin_configures_only_their_site(cast, site_a, site_b):
    admin_a = cast["admin_a"]
    prod_a = Environment.objects.get(site=site_a, tier=Tier.PROD)
    client = client_for(admin_a)
    response = client.post(
        f"/environments/{site_a.code}/PROD/edit/",
        {
            "purpose": "Live line 1",
            "data_policy": prod_a.data_policy,
            "access_policy": prod_a.access_policy,
            "sla": prod_a.sla,
            "equipment_writes": "on",
            "windows_enforced": "on",
            "smoke_test_minutes": 15,
            "rollback_budget_minutes": 15,
            "version_0": "1.0.1",  # MES, its one product
            "reason": "manual hotfix record",
        },
    )
    assert response.status_code == 302
    prod_a.refresh_from_db()
    assert (prod_a.purpose, prod_a.active_version) == ("Live line 1", "1.0.1")
    event = AuditEvent.objects.get(action="environments.environment.updated")
    assert (event.actor_name, event.reason, event.site_code) == ("admin_a", "manual hotfix record", "PLA")
    assert event.before["active_version"] == "1.0.0" and event.after["active_version"] == "1.0.1"
    assert client.post(f"/environments/{site_b.code}/PROD/edit/", {"reason": "x"}).status_code == 404


def test_release_manager_configures_prod_but_cannot_set_its_version(cast, site_a):
    prod = Environment.objects.get(site=site_a, tier=Tier.PROD)
    api = api_client_for(cast["releasemgr"])
    ok = api.patch(f"/api/v1/environments/{prod.pk}/", {"sla": "24/7", "reason": "new SLA"}, format="json")
    assert ok.status_code == 200 and ok.json()["sla"] == "24/7"
    refused = api.patch(
        f"/api/v1/environments/{prod.pk}/", {"active_version": "2.0.0", "reason": "x"}, format="json"
    )
    assert refused.status_code == 403
    assert "system admin" in refused.json()["detail"]
    prod.refresh_from_db()
    assert prod.active_version == "1.0.0"


def test_superuser_is_an_admin_not_every_role(db, site_a):
    root = make_user("root", is_superuser=True, is_staff=True)
    assert access.roles_at(root, site_a) == {Role.ADMIN}


def test_anonymous_users_are_sent_to_login(client, site_a):
    response = client.get("/environments/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/api/v1/environments/").status_code == 401


def test_admin_site_only_for_admins(cast):
    assert client_for(cast["admin"]).get("/admin/").status_code == 200
    response = client_for(cast["dev"]).get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_the_one_site_lookup_answers_only_for_visible_sites_and_refuses_odd_codes(cast, site_a, site_b):
    """E4: a site the user may not see is not found, whatever the code; bad codes are not found either."""
    assert access.visible_site(cast["itmanager_a"], site_a.code) == site_a
    assert access.visible_site(cast["itmanager_a"], site_b.code) is None
    assert access.visible_site(cast["admin"], site_b.code) == site_b
    for odd in ("", None, "\x00", "A" * 21, f"{site_a.code}\x00"):
        assert access.visible_site(cast["admin"], odd) is None


def test_the_role_map_reads_every_way_a_role_is_held_in_one_statement(db, site_a, site_b):
    """E7: a role held through a group, as the user's own global permission, through a group's or the
    user's own permission on one site, or by a time-bound grant (everywhere or at one site) counts
    where it is held; an expired grant does not; a superuser is an admin. One query for all of it."""
    from datetime import timedelta

    from django.contrib.auth.models import Group, Permission
    from django.test.utils import CaptureQueriesContext
    from guardian.shortcuts import assign_perm

    from core import clock
    from environments.models import TimedRoleGrant

    user = make_user("many", Role.DEVELOPER)  # the Developer role group
    user.user_permissions.add(Permission.objects.get(codename=Role.KEY_USER.codename))
    crew = Group.objects.create(name="Line B crew")
    crew.user_set.add(user)
    assign_perm(Role.OPERATIONS_MANAGER.codename, crew, site_b)
    assign_perm(Role.IT_MANAGER.codename, user, site_a)
    now = clock.now()
    for role, site, expires_at in (
        (Role.ADMIN, None, now + timedelta(hours=1)),
        (Role.RELEASE_MANAGER, site_a, now + timedelta(hours=1)),
        (Role.AUDITOR, site_b, now - timedelta(seconds=1)),  # expired
    ):
        TimedRoleGrant.objects.create(user=user, role=role, site=site, expires_at=expires_at, granted_at=now)
    other = make_user("other", Role.AUDITOR)
    other.is_superuser = True
    access.forget(user)
    with CaptureQueriesContext(connection) as seen:
        access.prime([user, other])
    assert len(seen.captured_queries) == 1
    assert access.role_map(user) == {
        None: {Role.DEVELOPER, Role.KEY_USER, Role.ADMIN},
        site_a.pk: {Role.IT_MANAGER, Role.RELEASE_MANAGER},
        site_b.pk: {Role.OPERATIONS_MANAGER},
    }
    assert access.role_map(other) == {None: {Role.AUDITOR, Role.ADMIN}}
    # The access review reads the same statement, with where each grant comes from (E7, A2).
    with CaptureQueriesContext(connection) as seen:
        held = access.grants([user, other])
    assert len(seen.captured_queries) == 1
    assert {(g.role, g.site_id, g.via, g.expires_at) for g in held[user.pk]} == {
        (Role.DEVELOPER, None, "group Developer", None),
        (Role.KEY_USER, None, "direct", None),
        (Role.ADMIN, None, "time-bound", now + timedelta(hours=1)),
        (Role.IT_MANAGER, site_a.pk, "direct", None),
        (Role.RELEASE_MANAGER, site_a.pk, "time-bound", now + timedelta(hours=1)),
        (Role.OPERATIONS_MANAGER, site_b.pk, "group Line B crew", None),
    }
    assert {(g.role, g.via) for g in held[other.pk]} == {
        (Role.AUDITOR, "group Auditor"),
        (Role.ADMIN, "superuser"),
    }
