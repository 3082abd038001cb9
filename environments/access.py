"""One place decides what a user may see and do (STYLE.md: netbox's permission choke point).

Pages, the API, the admin and tasks all ask `can()` / `require()` and restrict querysets with
`visible_sites()`. An object the user may not see is a 404; an action they may not take is a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.filters import SITE_CODE_MAX
from core.roles import Role

_CACHE_ATTR = "_changecontrol_roles"
GLOBAL = None  # key for roles held at every site


def role_map(user) -> dict[int | None, frozenset[Role]]:
    """{site_id or None: roles}. Computed once per user object (one query). A time-bound grant counts
    until its expiry and not a moment longer, whether or not the sweep has run."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if user is None or not user.is_authenticated or not user.is_active:
        return {}
    prime([user])
    return getattr(user, _CACHE_ATTR)


def prime(users: Iterable) -> None:
    """Compute the roles of many users at once, one query whatever their number, into each one's
    cache: what `role_map` gives one by one (it asks through here), used where a rule asks about
    several people, such as the absent approvers a delegate stands in for."""
    todo: dict[int, list] = {}
    for user in users:
        if (
            user is not None
            and user.is_authenticated
            and user.is_active
            and getattr(user, _CACHE_ATTR, None) is None
        ):
            todo.setdefault(user.pk, []).append(user)  # one person may come as several objects
    if not todo:
        return
    result: dict[int, dict[int | None, set[Role]]] = {pk: {} for pk in todo}
    for user_id, site, codename, _group, _expires in _role_rows(todo):
        role = Role.from_codename(codename)
        if role:
            result[user_id].setdefault(None if site is None else int(site), set()).add(role)
    for pk, same in todo.items():
        if same[0].is_superuser:
            # A superuser is a system admin, never silently every role (separation of duties).
            result[pk].setdefault(GLOBAL, set()).add(Role.ADMIN)
        frozen = {key: frozenset(value) for key, value in result[pk].items()}
        for user in same:
            setattr(user, _CACHE_ATTR, frozen)


def _role_rows(user_ids) -> list[tuple[int, str | None, str, str | None, datetime | None]]:
    """(user id, site id as text or None for every site, role codename, the group it comes through or
    None, when a time-bound grant ends or None) for each way these users hold a role: their groups' and
    their own global permissions, their time-bound grants still running, their own and their groups'
    permissions on a site. One UNION ALL, written once as SQL: every page asks it (`prime`), the
    access review too (`grants`); composing five ORM querysets cost more than running them."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from core import clock
    from environments.models import Site

    ids = list(user_ids)
    marks = ", ".join(["%s"] * len(ids))
    site_ct = ContentType.objects.get_for_model(Site).pk
    now = connection.ops.adapt_datetimefield_value(clock.now())
    with connection.cursor() as cursor:
        cursor.execute(
            _role_sql().format(users=marks),
            [now, *ids, site_ct, *ids, site_ct, *ids, site_ct, *ids, site_ct, *ids],
        )
        rows = cursor.fetchall()
    if connection.vendor == "sqlite":  # a raw SQLite row holds the time without its zone: UTC
        rows = [(*row[:4], _utc(row[4])) for row in rows]
    return rows


def _utc(value) -> datetime | None:
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@functools.cache
def _role_sql() -> str:
    from django.contrib.auth.models import Group, Permission, User
    from guardian.models import GroupObjectPermission, UserObjectPermission

    from environments.models import TimedRoleGrant

    names = {
        "perm": Permission._meta.db_table,
        "group_perm": Group.permissions.through._meta.db_table,
        "user_group": User.groups.through._meta.db_table,
        "user_perm": User.user_permissions.through._meta.db_table,
        "timed": TimedRoleGrant._meta.db_table,
        "group": Group._meta.db_table,
        "user_obj": UserObjectPermission._meta.db_table,
        "group_obj": GroupObjectPermission._meta.db_table,
    }
    # The time-bound grants first: their row gives the columns their types (a NULL does not).
    return (  # noqa: S608 (table names from the models; every value is a parameter)
        "SELECT t.user_id, CAST(t.site_id AS VARCHAR(20)), 'role_' || t.role, NULL, t.expires_at FROM {timed} t"
        " WHERE t.expires_at > %s AND t.user_id IN ({{users}})"
        " UNION ALL SELECT ug.user_id, NULL, p.codename, g.name, NULL FROM {perm} p"
        " JOIN {group_perm} gp ON gp.permission_id = p.id JOIN {user_group} ug ON ug.group_id = gp.group_id"
        " JOIN {group} g ON g.id = ug.group_id WHERE p.content_type_id = %s AND ug.user_id IN ({{users}})"
        " UNION ALL SELECT up.user_id, NULL, p.codename, NULL, NULL FROM {perm} p"
        " JOIN {user_perm} up ON up.permission_id = p.id WHERE p.content_type_id = %s AND up.user_id IN ({{users}})"
        " UNION ALL SELECT o.user_id, o.object_pk, p.codename, NULL, NULL FROM {user_obj} o"
        " JOIN {perm} p ON p.id = o.permission_id WHERE o.content_type_id = %s AND o.user_id IN ({{users}})"
        " UNION ALL SELECT ug.user_id, o.object_pk, p.codename, g.name, NULL FROM {group_obj} o"
        " JOIN {user_group} ug ON ug.group_id = o.group_id JOIN {group} g ON g.id = ug.group_id"
        " JOIN {perm} p ON p.id = o.permission_id WHERE o.content_type_id = %s AND ug.user_id IN ({{users}})"
    ).format(**names)


@dataclass(frozen=True)
class Grant:
    """One way a user holds a role: where (a site's id, or None for every site), through what, and
    until when (None: until revoked)."""

    role: Role
    site_id: int | None
    via: str
    expires_at: datetime | None = None


def grants(users: Iterable) -> dict[int, list[Grant]]:
    """Every role grant of these users, however it is held, for the access review: the rows `role_map`
    reads (`_role_rows`, with the group each comes through), one query whatever the number of users.
    Listed for inactive users too (whose roles count nowhere) so that a review sees what would come
    back."""
    users = list(users)
    found: dict[int, list[Grant]] = {user.pk: [] for user in users}
    if not found:
        return found
    for user_id, site, codename, group, expires_at in _role_rows(found):
        role = Role.from_codename(codename)
        if not role:
            continue
        if expires_at is not None:
            via = _("time-bound")
        else:
            via = _("group %(name)s") % {"name": group} if group else _("direct")
        found[user_id].append(Grant(role, None if site is None else int(site), via, expires_at))
    for user in users:
        if user.is_superuser:
            found[user.pk].append(Grant(Role.ADMIN, GLOBAL, _("superuser")))
    order = {role: n for n, role in enumerate(Role)}
    for held in found.values():
        held.sort(key=lambda g: (g.site_id is not None, g.site_id or 0, order[g.role], g.via))
    return found


def forget(user) -> None:
    """Drop the cached roles after a change to the user's groups or permissions."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    for attr in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        if hasattr(user, attr):
            delattr(user, attr)


def roles_at(user, site) -> frozenset[Role]:
    roles = role_map(user)
    site_id = getattr(site, "pk", site)
    return roles.get(GLOBAL, frozenset()) | roles.get(site_id, frozenset())


def global_roles(user) -> frozenset[Role]:
    return role_map(user).get(GLOBAL, frozenset())


def all_roles(user) -> frozenset[Role]:
    roles: set[Role] = set()
    for value in role_map(user).values():
        roles |= value
    return frozenset(roles)


def sites_with_role(user, role: Role) -> frozenset[int]:
    """The sites where `role` is granted to the user for that site alone (a role held globally
    counts everywhere: ask `has_role(user, role)` first)."""
    return frozenset(key for key, roles in role_map(user).items() if key is not GLOBAL and role in roles)


def has_role(user, role: Role, site=None) -> bool:
    if site is None:
        return role in global_roles(user)
    return role in roles_at(user, site)


def has_any_role(user, roles: Iterable[Role], site=None) -> bool:
    held = roles_at(user, site) if site is not None else all_roles(user)
    return bool(held & set(roles))


def role_labels(user) -> list[str]:
    return sorted(str(role.label) for role in all_roles(user))


def visible_sites(user) -> QuerySet:
    """A user sees every site when they hold any role globally, else the sites of their roles."""
    from environments.models import Site

    roles = role_map(user)
    if roles.get(GLOBAL):
        return Site.objects.all()
    return Site.objects.filter(pk__in=[key for key in roles if key is not None])


def visible_site_ids(user) -> list[int] | None:
    """The ids of `visible_sites(user)` without asking the database, or None when the user sees
    every site: a filter on a site foreign key then needs no condition at all."""
    roles = role_map(user)
    if roles.get(GLOBAL):
        return None
    return sorted(key for key in roles if key is not None)


def visible_site(user, code: str):
    """The site with this code if the user may see it, else None: the one site lookup."""
    code = str(code or "")
    if (
        not code or len(code) > SITE_CODE_MAX or "\x00" in code
    ):  # no site has such a code (and PostgreSQL refuses NUL)
        return None
    return visible_sites(user).filter(code=code).first()


def get_visible_or_404(queryset: QuerySet, user, site_field: str = "site", **lookup):
    """Fetch one object of a site the user may see; anything else is a 404."""
    try:
        return queryset.filter(**{f"{site_field}__in": visible_sites(user)}).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError) as exc:
        raise Http404("Not found") from exc


# --- Actions on an environment, by tier (E2, E3, E4, E7) -----------------------------------
# Developers never hold a PROD action: changes reach PROD through the automated deployment or a
# system admin (E4). tests/environments/test_permissions.py asserts this table.
DEV, UAT, PROD = "DEV", "UAT", "PROD"
ENVIRONMENT_ACTIONS: dict[str, dict[str, frozenset[Role]]] = {
    # edit the environment's record: purpose, policies, SLA, smoke settings
    "configure": {
        DEV: frozenset({Role.ADMIN, Role.RELEASE_MANAGER}),
        UAT: frozenset({Role.ADMIN, Role.RELEASE_MANAGER}),
        PROD: frozenset({Role.ADMIN, Role.RELEASE_MANAGER}),
    },
    # start a deployment to the environment
    "deploy": {
        DEV: frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.ADMIN}),
        UAT: frozenset({Role.DEVELOPER, Role.KEY_USER, Role.RELEASE_MANAGER, Role.ADMIN}),
        PROD: frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
    },
    # record by hand which version runs there (outside an automated deployment)
    "set_version": {
        DEV: frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.ADMIN}),
        UAT: frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
        PROD: frozenset({Role.ADMIN}),
    },
    # write the environment's data (E2: developers in DEV; E3: key users in UAT; E4: nobody in PROD
    # but a system admin)
    "write_data": {
        DEV: frozenset({Role.DEVELOPER, Role.ADMIN}),
        UAT: frozenset({Role.KEY_USER, Role.ADMIN}),
        PROD: frozenset({Role.ADMIN}),
    },
}
SITE_ACTIONS: dict[str, frozenset[Role]] = {
    "configure": frozenset({Role.ADMIN}),
    # the site's outbound webhooks (Slack, Teams, signed JSON) and their delivery log
    "manage_webhooks": frozenset({Role.RELEASE_MANAGER, Role.ADMIN}),
}
GLOBAL_ACTIONS: dict[str, frozenset[Role]] = {
    "read_audit": frozenset({Role.ADMIN, Role.AUDITOR}),
    "admin_site": frozenset({Role.ADMIN}),
    # the access review: every user, their roles, sign-ins and second factors
    "review_access": frozenset({Role.ADMIN, Role.AUDITOR}),
}


def can(user, action: str, obj=None) -> bool:
    from environments.models import Environment, Site

    if isinstance(obj, Environment):
        allowed = ENVIRONMENT_ACTIONS[action][obj.tier]
        return bool(roles_at(user, obj.site_id) & allowed)
    if isinstance(obj, Site):
        return bool(roles_at(user, obj.pk) & SITE_ACTIONS[action])
    if obj is None:
        return bool(global_roles(user) & GLOBAL_ACTIONS[action])
    raise TypeError(f"no rule for {action!r} on {type(obj).__name__}")


# What a refused action says, per action (the English reads "You may not <action> here.").
REFUSALS = {
    "configure": gettext_lazy("You may not configure here."),
    "deploy": gettext_lazy("You may not deploy here."),
    "set_version": gettext_lazy("You may not set version here."),
    "write_data": gettext_lazy("You may not write data here."),
    "manage_webhooks": gettext_lazy("You may not manage webhooks here."),
    "read_audit": gettext_lazy("You may not read audit here."),
    "admin_site": gettext_lazy("You may not admin site here."),
    "review_access": gettext_lazy("You may not review access here."),
}


def require(user, action: str, obj=None) -> None:
    if not can(user, action, obj):
        refused = REFUSALS.get(action)
        raise PermissionDenied(str(refused) if refused else f"You may not {action.replace('_', ' ')} here.")


APPROVER_ROLES = frozenset({Role.IT_MANAGER, Role.OPERATIONS_MANAGER, Role.CIO, Role.PLANT_DIRECTOR})


# --- Navigation by role ---------------------------------------------------------------------
def navigation(user) -> list[dict[str, str]]:
    items = [
        {"label": _("Home"), "url": reverse("home"), "key": "home"},
        {"label": _("RFCs"), "url": reverse("releases:list"), "key": "rfcs"},
        {"label": _("Calendar"), "url": reverse("environments:calendar"), "key": "calendar"},
        {"label": _("Dashboard"), "url": reverse("dashboard"), "key": "dashboard"},
    ]
    if all_roles(user) & APPROVER_ROLES:
        items.append({"label": _("Approvals"), "url": reverse("approvals:queue"), "key": "approvals"})
    items.append({"label": _("Environments"), "url": reverse("environments:board"), "key": "environments"})
    if can(user, "read_audit"):
        items.append({"label": _("Audit trail"), "url": reverse("audit:list"), "key": "audit"})
    if can(user, "review_access"):
        items.append(
            {"label": _("Access review"), "url": reverse("access_review:page"), "key": "access_review"}
        )
    if can(user, "admin_site"):
        items.append({"label": _("Administration"), "url": reverse("admin:index"), "key": "admin"})
    items.append({"label": "API", "url": reverse("api-docs"), "key": "api"})
    return items
