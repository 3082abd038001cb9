"""Lockout: too many failed password entries lock the account and the client address for a while.

Every password entry (the sign-in page, the admin's sign-in, the token endpoint, the password at a
signature or waiver) asks here first (`check`), then reports how it went (`failed`, `succeeded`).
The counts are rows in the database, so every web process shares them. One account's count and one
address's count are kept; either reaching LOCKOUT_FAILURES within LOCKOUT_MINUTES locks it for
LOCKOUT_MINUTES, during which even the right password is refused. Unknown usernames are counted
like known ones (the answer does not tell which exist).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import dateformat
from django.utils.translation import gettext

from accounts.models import Lockout, LockoutScope
from audit.services import record
from core import clock


def username_key(username: str | None) -> str:
    return (username or "").strip().casefold()[:150]


@dataclass(frozen=True)
class Lock:
    scope: str
    key: str
    until: datetime

    @property
    def until_text(self) -> str:
        # "14:05 UTC on 04 Dec 2026"; the month's name in the language of the page.
        return gettext("%(time)s UTC on %(date)s") % {
            "time": self.until.strftime("%H:%M"),
            "date": dateformat.format(self.until, "d M Y"),
        }

    @property
    def message(self) -> str:
        """Why the password is refused (no final stop: callers add what was not done)."""
        if self.scope == LockoutScope.ACCOUNT:
            text = gettext("Too many failed password attempts: this account is locked until %(until)s")
        else:
            text = gettext(
                "Too many failed password attempts: sign-in from your network address is locked until %(until)s"
            )
        return text % {"until": self.until_text}

    def retry_after(self) -> int:
        return max(1, math.ceil((self.until - clock.now()).total_seconds()))


class Locked(Exception):
    def __init__(self, lock: Lock):
        super().__init__(lock.message)
        self.lock = lock


def _window() -> timedelta:
    return timedelta(minutes=settings.LOCKOUT_MINUTES)


def address_key(address: str | None) -> str:
    """An IPv4 address as it is; an IPv6 address by its /64, which one client usually holds whole."""
    if not address:
        return ""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:150]
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _keys(username: str | None, address: str | None) -> list[tuple[str, str]]:
    keys = []
    if username_key(username):
        keys.append((LockoutScope.ACCOUNT, username_key(username)))
    if address_key(address):
        keys.append((LockoutScope.ADDRESS, address_key(address)))
    return keys


def current_lock(username: str | None, address: str | None) -> Lock | None:
    """The lock that refuses `username` from `address` now (the account's first), or None."""
    keys = _keys(username, address)
    if not keys:
        return None
    match = Q()
    for scope, key in keys:
        match |= Q(scope=scope, key=key)
    rows = {
        row.scope: row
        for row in Lockout.objects.filter(match, locked_until__gt=clock.now()).only(
            "scope", "key", "locked_until"
        )
    }
    row = rows.get(LockoutScope.ACCOUNT) or rows.get(LockoutScope.ADDRESS)
    return Lock(row.scope, row.key, row.locked_until) if row else None


def check(username: str | None, address: str | None, *, entry: str) -> None:
    """Raise `Locked` (and audit the refused attempt) when `username` or `address` is locked."""
    lock = current_lock(username, address)
    if lock is None:
        return
    record(
        "accounts.lockout.refused",
        actor_name=str(username or "")[:150],
        object_type="accounts.lockout",
        after={"entry": entry, "scope": lock.scope, "key": lock.key, "address": address, "until": lock.until},
    )
    raise Locked(lock)


def failed(username: str | None, address: str | None, *, entry: str) -> Lock | None:
    """Count one failed password entry; return the lock it caused, if it caused one."""
    now = clock.now()
    caused: Lock | None = None
    with transaction.atomic():
        # Rows with nothing left to say (failures forgotten, no lock in force) go, so the table stays small.
        Lockout.objects.filter(
            Q(locked_until__isnull=True) | Q(locked_until__lte=now), last_failure_at__lte=now - _window()
        ).delete()
        for scope, key in _keys(username, address):
            row, _ = Lockout.objects.select_for_update().get_or_create(scope=scope, key=key)
            stale = row.first_failure_at is None or row.first_failure_at <= now - _window()
            if stale or (row.locked_until is not None and row.locked_until <= now):
                row.failures, row.first_failure_at, row.locked_until = 0, now, None
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= settings.LOCKOUT_FAILURES and row.locked_until is None:
                row.locked_until = now + _window()
                record(
                    "accounts.lockout.locked",
                    row,
                    actor_name=str(username or "")[:150],
                    after={
                        "entry": entry,
                        "scope": scope,
                        "key": key,
                        "address": address,
                        "failures": row.failures,
                        "until": row.locked_until,
                    },
                )
                caused = caused or Lock(scope, key, row.locked_until)
            row.save()
    return caused


def succeeded(username: str | None) -> None:
    """The right password: the account's count starts again (the address's stays)."""
    key = username_key(username)
    if key:
        Lockout.objects.filter(
            Q(locked_until__isnull=True) | Q(locked_until__lte=clock.now()),
            scope=LockoutScope.ACCOUNT,
            key=key,
        ).delete()


def unlock(row: Lockout, *, actor, reason: str = "") -> None:
    """An administrator lifts a lock (or clears a count) before its time."""
    with transaction.atomic():
        locked = Lockout.objects.select_for_update().get(pk=row.pk)
        before = {"failures": locked.failures, "locked_until": locked.locked_until}
        locked.failures, locked.first_failure_at, locked.locked_until = 0, None, None
        locked.save(update_fields=["failures", "first_failure_at", "locked_until"])
        record(
            "accounts.lockout.unlocked",
            locked,
            actor=actor,
            before={**before, "scope": locked.scope, "key": locked.key},
            after={"failures": 0, "locked_until": None},
            reason=reason or "unlocked by an administrator",
        )


def locked_until_by_username(usernames) -> dict[str, datetime]:
    """For an access review: each of `usernames` locked now → until when (one query)."""
    keys = {username_key(name): name for name in usernames}
    rows = Lockout.objects.filter(
        scope=LockoutScope.ACCOUNT, key__in=list(keys), locked_until__gt=clock.now()
    ).values_list("key", "locked_until")
    return {keys[key]: until for key, until in rows}
