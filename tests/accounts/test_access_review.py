"""The access review (a page and a CSV of every account, their roles per site, last sign-in, second
factor and API tokens) and time-bound role grants that end by themselves."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import grants, tokens
from audit.models import AuditEvent
from core import clock
from core.roles import Role
from environments import access
from environments.models import TimedRoleGrant
from tests.conftest import client_for, make_user

REVIEW = "/accounts/review/"
CSV = "/accounts/review/export.csv"


def fresh(user: User) -> User:
    """The user as the next request would load it (no cached roles)."""
    return User.objects.get(pk=user.pk)


def _grant(user, role=Role.ADMIN, site=None, hours=2) -> TimedRoleGrant:
    return TimedRoleGrant.objects.create(
        user=user,
        role=role,
        site=site,
        expires_at=clock.now() + timedelta(hours=hours),
        granted_at=clock.now(),
    )


# --- Time-bound grants --------------------------------------------------------------------------
def test_a_time_bound_admin_grant_ends_at_its_expiry_even_before_the_sweep(cast, site_a):
    temp = make_user("temp")
    start = clock.now()
    with time_machine.travel(start, tick=False):
        grant = _grant(temp, hours=2)
        assert access.has_role(fresh(temp), Role.ADMIN)
        assert access.can(fresh(temp), "admin_site")
        assert client_for(temp).get("/admin/").status_code == 200
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        # Not swept yet: the row is there, the role is not (fail closed).
        assert TimedRoleGrant.objects.filter(pk=grant.pk).exists()
        assert not access.has_role(fresh(temp), Role.ADMIN)
        assert not access.can(fresh(temp), "admin_site")
        assert client_for(temp).get("/admin/").status_code == 302
        access.prime([primed := fresh(temp)])
        assert not access.has_role(primed, Role.ADMIN)

        assert grants.expire_due() == 1
        assert grants.expire_due() == 0
    assert not TimedRoleGrant.objects.exists()
    events = list(AuditEvent.objects.filter(action="accounts.grant.expired"))
    assert len(events) == 1
    assert events[0].before["user"] == "temp" and events[0].before["role"] == "admin"
    assert events[0].object_id == str(grant.pk) and events[0].actor_id is None


def test_a_time_bound_grant_at_one_site_counts_there_only(cast, site_a, site_b):
    temp = make_user("temp")
    _grant(temp, Role.IT_MANAGER, site=site_a)
    primed = fresh(temp)
    access.prime([primed])
    for user in (fresh(temp), primed):
        assert access.roles_at(user, site_a) == {Role.IT_MANAGER}
        assert access.roles_at(user, site_b) == frozenset()
        assert not access.has_role(user, Role.IT_MANAGER)


def test_the_sweep_leaves_running_grants_alone(cast):
    running = _grant(cast["dev"], hours=1)
    with time_machine.travel(clock.now() + timedelta(minutes=59), tick=False):
        assert grants.expire_due() == 0
    assert TimedRoleGrant.objects.filter(pk=running.pk).exists()
    assert not AuditEvent.objects.filter(action="accounts.grant.expired").exists()


def test_an_admin_grants_a_role_for_a_limited_time_in_the_administration(cast):
    admin = client_for(cast["admin"])
    add = reverse("admin:environments_timedrolegrant_add")
    until = clock.now() + timedelta(days=1)
    form = {
        "user": cast["dev"].pk,
        "role": Role.ADMIN.value,
        "site": "",
        "expires_at_0": until.strftime("%Y-%m-%d"),
        "expires_at_1": until.strftime("%H:%M:%S"),
        "audit_reason": "Night shift maintenance",
    }
    response = admin.post(add, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = TimedRoleGrant.objects.get()
    assert grant.granted_by == cast["admin"] and grant.role == "admin" and grant.site is None
    event = AuditEvent.objects.get(action="accounts.grant.granted")
    assert event.reason == "Night shift maintenance" and event.after["user"] == "dev"
    assert access.has_role(fresh(cast["dev"]), Role.ADMIN)

    past = clock.now() - timedelta(hours=1)
    response = admin.post(
        add,
        {**form, "expires_at_0": past.strftime("%Y-%m-%d"), "expires_at_1": past.strftime("%H:%M:%S")},
    )
    assert response.status_code == 200 and "The expiry must be in the future." in response.content.decode()
    assert TimedRoleGrant.objects.count() == 1

    # Revoked early: deleted and audited.
    delete = reverse("admin:environments_timedrolegrant_delete", args=[grant.pk])
    assert admin.post(delete, {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="accounts.grant.revoked").count() == 1
    assert not access.has_role(fresh(cast["dev"]), Role.ADMIN)
    # Not for anyone but an admin.
    assert client_for(cast["auditor"]).get(add).status_code == 302


# --- The review page ------------------------------------------------------------------------------
def test_the_review_lists_every_account_with_roles_per_site_and_last_sign_in(cast, site_a):
    seen_at = clock.now().replace(year=2026, month=3, day=4, hour=5, minute=6, second=0, microsecond=0)
    User.objects.filter(pk=cast["itmanager_a"].pk).update(last_login=seen_at)
    User.objects.filter(pk=cast["nobody"].pk).update(is_active=False)
    until = _grant(cast["tester"], Role.ADMIN, hours=3).expires_at
    tokens.issue(cast["releasemgr"], name="review")

    auditor = client_for(cast["auditor"])
    response = auditor.get(REVIEW)
    assert response.status_code == 200
    body = response.content.decode()
    rows = {row.user.username: row for row in response.context["rows"]}
    assert set(rows) == set(User.objects.values_list("username", flat=True))
    assert [(r.role, r.where, r.via) for r in rows["itmanager_a"].roles] == [("IT Manager", "PLA", "direct")]
    assert [(r.role, r.where, r.via) for r in rows["admin"].roles] == [("Admin", "All sites", "group Admin")]
    assert [(r.role, r.where) for r in rows["admin_a"].roles] == [("Admin", "PLA")]
    tester_roles = {(r.role, r.where, r.via, r.expires_at) for r in rows["tester"].roles}
    assert ("Admin", "All sites", "time-bound", until) in tester_roles
    assert ("Key user", "All sites", "group Key user", None) in tester_roles
    assert rows["nobody"].roles == [] and not rows["nobody"].user.is_active
    assert rows["releasemgr"].tokens == 1 and rows["dev"].tokens == 0
    assert rows["dev"].mfa == "—"
    assert 'data-username="itmanager_a"' in body and "2026-03-04 05:06" in body
    assert f"until {until:%Y-%m-%d %H:%M} UTC" in body
    assert ">Inactive<" in body
    event = AuditEvent.objects.get(action="accounts.review.viewed")
    assert event.actor_name == "auditor" and event.after == {"users": len(rows)}
    # The review lists the roles the portal enforces, each where it counts.
    users = list(User.objects.filter(is_active=True))
    listed = access.grants(users)
    for user in users:
        enforced = {(role, key) for key, roles in access.role_map(user).items() for role in roles}
        assert enforced == {(grant.role, grant.site_id) for grant in listed[user.pk]}, user.username


@pytest.mark.parametrize("who", ["dev", "itmanager", "releasemgr", "nobody"])
def test_the_review_is_for_auditors_and_admins_only(cast, who):
    client = client_for(cast[who])
    assert client.get(REVIEW).status_code == 403
    assert client.get(CSV).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="accounts.review.").exists()


def test_the_review_needs_a_login(client, db):
    response = client.get(REVIEW)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_review_is_in_the_navigation_of_auditors_and_admins(cast):
    for who, shown in (("auditor", True), ("admin", True), ("dev", False), ("itmanager", False)):
        body = client_for(cast[who]).get(reverse("home")).content.decode()
        assert ('data-nav="access_review"' in body) is shown, who


# --- The CSV -------------------------------------------------------------------------------------
def test_the_csv_lists_every_account_with_formula_cells_neutralised(cast, site_a):
    User.objects.filter(pk=cast["dev"].pk).update(first_name='=HYPERLINK("http://x")', last_name="+1")
    evil = make_user("@evil", Role.DEVELOPER, site=site_a)
    User.objects.filter(pk=evil.pk).update(email="-2+3@plant.test")
    _grant(cast["tester"], Role.ADMIN, site=site_a, hours=5)
    tokens.issue(cast["dev"], name="review")

    response = client_for(cast["admin"]).get(CSV)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="access-review-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_name = {row["username"]: row for row in rows}
    assert set(by_name) == set(User.objects.values_list("username", flat=True)) - {"@evil"} | {"'@evil"}
    assert by_name["dev"]["name"] == '\'=HYPERLINK("http://x") +1'
    assert by_name["dev"]["api_tokens"] == "1" and by_name["dev"]["mfa"] == "—"
    assert by_name["'@evil"]["email"] == "'-2+3@plant.test"
    assert by_name["'@evil"]["roles"] == "Developer @ PLA (direct)"
    assert "Admin @ PLA (time-bound, until " in by_name["tester"]["roles"]
    assert by_name["admin"]["staff"] == "yes" and by_name["admin"]["superuser"] == "no"
    assert by_name["admin"]["last_login_utc"] != ""  # force_login signed the admin in
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), row
    event = AuditEvent.objects.get(action="accounts.review.exported")
    assert event.actor_name == "admin" and event.after == {"users": len(rows), "format": "csv"}


# --- Queries ---------------------------------------------------------------------------------------
def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200
        if response.streaming:
            b"".join(response.streaming_content)
    return len(ctx.captured_queries)


def _more_people(count: int, site) -> None:
    for n in range(count):
        user = make_user(f"extra{n}", Role.DEVELOPER, site=site if n % 2 else None)
        if n % 3 == 0:
            tokens.issue(user, name="review")
        if n % 4 == 0:
            _grant(user, Role.RELEASE_MANAGER, site=site if n % 8 else None)


def test_the_review_and_its_csv_take_as_many_queries_for_many_users_as_for_few(cast, site_a):
    client = client_for(cast["auditor"])
    few = _queries(client, REVIEW), _queries(client, CSV)
    _more_people(40, site_a)
    many = _queries(client, REVIEW), _queries(client, CSV)
    assert many == few
    assert few[0] <= 20
