"""What OpenID Connect and LDAP sign-in share: the identity record, just-in-time users, and the
group → role sync run at every directory sign-in.

The sync grants the roles the mapping (DirectoryGroupMapping) gives the user's current groups and
takes back the roles an earlier sync granted whose group is gone. A role the user already held
before the directory would have granted it counts as granted by hand: it is never recorded as a
directory grant, so the directory never takes it away. Every change is audited.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.services import record
from core import clock
from core.roles import Role
from environments import access
from environments.roles_setup import ensure_role_groups

from .models import DirectoryGrant, DirectoryGroupMapping, DirectoryIdentity, DirectorySource

logger = logging.getLogger(__name__)

_USERNAME_BAD = re.compile(r"[^\w.@+-]")


def is_directory_user(user) -> bool:
    """True when the user signs in through a directory (they have no usable local password)."""
    return DirectoryIdentity.objects.filter(user=user).exists()


def actor_name(source: str) -> str:
    return f"directory sync ({DirectorySource(source).label})"


def free_username(wanted: str, *, exclude_pk: int | None = None) -> str:
    """`wanted` made a valid Django username, with -2, -3… when another user already has it
    (a directory account never takes over a local one of the same name)."""
    base = _USERNAME_BAD.sub("_", wanted.strip())[:140] or "user"
    users = get_user_model().objects.exclude(pk=exclude_pk) if exclude_pk else get_user_model().objects.all()
    candidate, n = base, 1
    while users.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def find_user(source: str, issuer: str, subject: str):
    identity = (
        DirectoryIdentity.objects.select_related("user")
        .filter(source=source, issuer=issuer, subject=subject)
        .first()
    )
    return identity.user if identity else None


def link_identity(user, source: str, issuer: str, subject: str, username_at_source: str) -> DirectoryIdentity:
    identity, created = DirectoryIdentity.objects.get_or_create(
        source=source,
        issuer=issuer,
        subject=subject,
        defaults={"user": user, "username_at_source": username_at_source[:255]},
    )
    if created:
        record(
            "accounts.directory.user_created",
            actor_name=actor_name(source),
            object_type="auth.user",
            object_id=str(user.pk),
            after={"username": user.username, "source": source, "issuer": issuer, "subject": subject},
        )
    return identity


def _role_group(role: Role):
    return ensure_role_groups()[role]


def _holds(user, role: Role, site) -> bool:
    from guardian.shortcuts import get_perms

    if site is None:
        return user.groups.filter(pk=_role_group(role).pk).exists()
    return role.codename in get_perms(user, site)


def _grant(user, role: Role, site) -> None:
    from guardian.shortcuts import assign_perm

    if site is None:
        user.groups.add(_role_group(role))
    else:
        assign_perm(role.codename, user, site)


def _revoke(user, role: Role, site) -> None:
    from guardian.shortcuts import remove_perm

    if site is None:
        user.groups.remove(_role_group(role))
    else:
        remove_perm(role.codename, user, site)


def _audit(action: str, user, source: str, role: Role, site, groups: list[str]) -> None:
    record(
        action,
        actor_name=actor_name(source),
        object_type="auth.user",
        object_id=str(user.pk),
        after={
            "user": user.username,
            "role": role.value,
            "site": site.code if site else None,
            "source": source,
            "groups": groups,
        },
        site_code=site.code if site else None,
    )


def sync_roles(user, source: str, groups: Iterable[str]) -> tuple[list, list]:
    """Bring the user's directory-granted roles in line with `groups` (names or DNs, compared
    case-insensitively). Returns (granted, revoked) as lists of (Role, Site or None)."""
    names = {str(group).strip().casefold() for group in groups if str(group).strip()}
    wanted: dict[tuple[str, int | None], tuple] = {}
    for mapping in DirectoryGroupMapping.objects.filter(source=source).select_related("site"):
        if mapping.group.strip().casefold() in names:
            key = (mapping.role, mapping.site_id)
            entry = wanted.setdefault(key, (Role(mapping.role), mapping.site, []))
            entry[2].append(mapping.group)
    granted, revoked = [], []
    with transaction.atomic():
        mine = {
            (grant.role, grant.site_id): grant
            for grant in DirectoryGrant.objects.select_for_update().filter(user=user, source=source)
        }
        for key in wanted.keys() - mine.keys():
            role, site, matched = wanted[key]
            others = DirectoryGrant.objects.filter(user=user, role=role.value, site=site).exclude(
                source=source
            )
            if others.exists():
                # Another directory granted it already: share the grant, nothing changes.
                DirectoryGrant.objects.create(
                    user=user, source=source, role=role.value, site=site, granted_at=clock.now()
                )
                continue
            if _holds(user, role, site):
                continue  # granted by hand: not the directory's to manage
            _grant(user, role, site)
            DirectoryGrant.objects.create(
                user=user, source=source, role=role.value, site=site, granted_at=clock.now()
            )
            _audit("accounts.directory.role_granted", user, source, role, site, sorted(matched))
            granted.append((role, site))
        for key in mine.keys() - wanted.keys():
            grant = mine[key]
            role, site = Role(grant.role), grant.site
            grant.delete()
            if DirectoryGrant.objects.filter(user=user, role=role.value, site=site).exists():
                continue  # still granted through the other directory
            if _holds(user, role, site):
                _revoke(user, role, site)
                _audit("accounts.directory.role_revoked", user, source, role, site, [])
                revoked.append((role, site))
    access.forget(user)
    return granted, revoked


def signed_in(user, identity: DirectoryIdentity, groups: list[str]) -> None:
    """After a successful directory sign-in: sync the roles, stamp the identity, audit the sign-in."""
    with transaction.atomic():
        sync_roles(user, identity.source, groups)
        identity.last_sync_at = clock.now()
        identity.save(update_fields=["last_sync_at", "username_at_source"])
        record(
            "accounts.directory.signed_in",
            actor=user,
            object_type="auth.user",
            object_id=str(user.pk),
            after={
                "source": identity.source,
                "issuer": identity.issuer,
                "subject": identity.subject,
                "username_at_source": identity.username_at_source,
                "groups": sorted(groups),
            },
        )
