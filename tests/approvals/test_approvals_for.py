"""`approvals_for(user)` is `capacity()` asked of every pending approval, as one query: the same
approvals for every kind of holder (global, per site, through a group's site permission), delegate
(active, cancelled, past and future absences) and separation of duties, in queries that do not grow."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from approvals import services
from approvals.models import Absence, Approval, ApprovalRound, ApprovalState, ApprovalStep
from core import clock
from core.roles import Role
from environments import access
from releases.models import Rfc, UatSignoff
from releases.services import rfc_detail_queryset
from tests import factories
from tests.conftest import make_site, make_user

APPROVER_ROLES = [Role.IT_MANAGER, Role.OPERATIONS_MANAGER, Role.CIO, Role.PLANT_DIRECTOR]


def _reference(user) -> set[int]:
    """The rule as it was written: `capacity` per pending approval."""
    found = set()
    for approval in Approval.objects.filter(state=ApprovalState.PENDING).select_related("rfc", "site"):
        try:
            services.capacity(user, approval)
        except PermissionDenied:
            continue
        found.add(approval.pk)
    return found


def _fresh(user) -> User:
    return User.objects.get(pk=user.pk)  # no cached roles


def _approvals(rfcs, sites, states=(ApprovalState.PENDING,)) -> None:
    now = clock.now()
    rows = []
    for n, rfc in enumerate(rfcs):
        rnd = ApprovalRound.objects.create(
            rfc=rfc, number=1, change_class=rfc.change_class, content_hash="0" * 64, created_at=now
        )
        step = ApprovalStep.objects.create(
            round=rnd, order=1, roles=[str(r) for r in APPROVER_ROLES], rule="all", activated_at=now
        )
        for site in sites:
            for i, role in enumerate(APPROVER_ROLES):
                rows.append(
                    Approval(step=step, rfc=rfc, role=role, site=site, state=states[(n + i) % len(states)])
                )
    Approval.objects.bulk_create(rows)


def test_approvals_for_is_capacity_for_everyone(cast, site_a, site_b):
    site_c = make_site("PLC")
    now = clock.now()
    people = {
        **cast,
        "itm_ops_c": make_user("itm_ops_c", Role.IT_MANAGER, Role.OPERATIONS_MANAGER, site=site_c),
        "ops_b": make_user("ops_b", Role.OPERATIONS_MANAGER, site=site_b),
        "cio": make_user("cio", Role.CIO),
        "director": make_user("director", Role.PLANT_DIRECTOR, Role.DEVELOPER),
        "root": make_user("root", is_superuser=True),
        "gone": make_user("gone", Role.OPERATIONS_MANAGER, site=site_a, is_active=False),
    }
    # A role at one site through a group's object permission.
    group = Group.objects.create(name="B approvers")
    assign_perm(Role.IT_MANAGER.codename, group, site_b)
    people["group_b"] = make_user("group_b", Role.CIO, site=site_c)
    people["group_b"].groups.add(group)

    def away(user, delegate, start=-1, end=1, cancelled=False):
        Absence.objects.create(
            user=people[user],
            delegate=people[delegate],
            starts_at=now + timedelta(days=start),
            ends_at=now + timedelta(days=end),
            cancelled_at=now if cancelled else None,
        )

    away("itmanager_a", "itm_ops_c")  # IT manager of A away; the IT manager of C stands in
    away("ops_b", "itm_ops_c")  # operations at B, same delegate
    away("cio", "director")  # the delegate holds none of the CIO's roles: no stand-in
    away("itmanager", "group_b", cancelled=True)  # cancelled
    away("itmanager", "ops_b", start=-3, end=-2)  # over
    away("itmanager", "itm_ops_c", start=2, end=3)  # not yet
    away("gone", "ops_b")  # an inactive holder gives no capacity
    away("director", "cio")

    release = factories.release(cast["dev"], "1.0.1")
    rfcs = [
        factories.rfc(cast["dev"], site_a, release=release),
        factories.rfc(
            cast["dev"],
            site_a,
            release=release,
            impacts=[{"site": s, "lines": ["L1"]} for s in (site_a, site_b, site_c)],
        ),
        factories.rfc(
            cast["releasemgr"], site_b, release=release, impacts=[{"site": site_b, "lines": ["L"]}]
        ),
    ]
    # Separation of duties: an approver who wrote an RFC, or signed off its UAT.
    people["itm_author"] = make_user("itm_author", Role.IT_MANAGER, Role.DEVELOPER)
    rfcs.append(
        factories.rfc(
            people["itm_author"], site_c, release=release, impacts=[{"site": site_c, "lines": ["L"]}]
        )
    )
    UatSignoff.objects.create(
        rfc=rfcs[1], site=site_b, release=release, signed_by=people["ops_b"], signed_at=now, comment="ok"
    )
    UatSignoff.objects.create(
        rfc=rfcs[0],
        site=site_a,
        release=release,
        signed_by=people["cio"],
        signed_at=now,
        comment="ok",
        voided_at=now,
    )
    _approvals(
        rfcs,
        [site_a, site_b, site_c],
        states=(ApprovalState.PENDING, ApprovalState.PENDING, ApprovalState.WAITING, ApprovalState.APPROVED),
    )

    # Everything of the RFCs signed off or written by an approver waits: separation of duties bites.
    Approval.objects.filter(rfc__in=[rfcs[0], rfcs[1], rfcs[3]]).update(state=ApprovalState.PENDING)

    nonempty = 0
    for name, person in people.items():
        expected = _reference(_fresh(person))
        got = set(services.approvals_for(_fresh(person)).values_list("pk", flat=True))
        assert got == expected, name
        nonempty += bool(expected)
        # The RFC page's question, one RFC at a time, on the RFC as the page reads it.
        for rfc in rfcs:
            read = Rfc.objects.prefetch_related("signoffs").get(pk=rfc.pk)  # as the page reads it
            pending = Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING).select_related("site")
            mine = {a.pk for a in pending} & expected
            assert services.signable(_fresh(person), read, list(pending)) == mine, (name, rfc.number)
    assert nonempty >= 6  # the cast really exercises the rule


def test_signable_asks_nothing_of_a_holder_the_author_or_a_bystander(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a, release=factories.release(cast["dev"], "1.0.1"))
    _approvals([rfc], [site_a])
    pending = list(Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING).select_related("site"))
    for who, expected in (
        ("itmanager", {a.pk for a in pending if a.role == Role.IT_MANAGER}),
        ("dev", set()),  # the author
        ("tester", set()),  # holds none of the roles
    ):
        user = _fresh(cast[who])
        access.role_map(user)  # read once per request by the page's layout
        read = rfc_detail_queryset(user).get(pk=rfc.pk)
        with CaptureQueriesContext(connection) as asked:
            assert services.signable(user, read, pending) == expected, who
        assert len(asked) == 0, who
    assert any(a.role == Role.IT_MANAGER for a in pending)


def test_prime_gives_what_each_user_computes_alone(cast, site_a):
    group = Group.objects.create(name="A key users")
    assign_perm(Role.KEY_USER.codename, group, site_a)
    cast["tester"].groups.add(group)
    root = make_user("root2", Role.AUDITOR, is_superuser=True)
    everyone = [*cast.values(), root]
    alone = {user.pk: access.role_map(_fresh(user)) for user in everyone}
    fresh = [_fresh(user) for user in everyone]
    with CaptureQueriesContext(connection) as primed:
        access.prime(fresh)
    assert len(primed) <= 5
    for user in fresh:
        with CaptureQueriesContext(connection) as asked:
            assert access.role_map(user) == alone[user.pk], user.username
        assert len(asked) == 0


def test_approvals_for_queries_do_not_grow(cast, site_a, site_b):
    release = factories.release(cast["dev"], "1.0.1")

    def absent(count: int) -> None:
        for _ in range(count):
            away = make_user(f"away{Absence.objects.count()}", Role.IT_MANAGER, site=site_b)
            for _ in range(2):  # overlapping absences of one person: still one person to ask about
                Absence.objects.create(
                    user=away,
                    delegate=cast["itmanager"],
                    starts_at=clock.now() - timedelta(days=1),
                    ends_at=clock.now() + timedelta(days=1),
                )

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            count = len(services.approvals_for(_fresh(cast["itmanager"])))
        return len(ctx), count

    absent(1)
    _approvals([factories.rfc(cast["dev"], site_a, release=release) for _ in range(2)], [site_a, site_b])
    few, shown_few = queries()
    _approvals([factories.rfc(cast["dev"], site_a, release=release) for _ in range(20)], [site_a, site_b])
    absent(5)
    many, shown_many = queries()
    assert shown_many > shown_few > 0
    assert many == few
