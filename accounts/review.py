"""The access review (Annex 11 §12): every user, the roles they hold at each site and how, when they
last signed in, their second factor and API tokens, for the periodic review of who may do what.

Queries do not grow with the number of users: the users, their grants (environments/access.py
`grants`), the sites' codes, then one query per column below.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from accounts import tokens
from audit.trail import neutralise
from environments import access
from environments.models import Site

ALL_SITES = gettext_noop("All sites")


# --- The columns other parts of accounts supply -------------------------------------------------
def mfa_status_by_user(user_ids: Iterable[int]) -> dict[int, str]:
    """Each user's second factor, as the review shows it ("—": none known)."""
    return {pk: "—" for pk in user_ids}


def token_count_by_user(user_ids: Iterable[int]) -> dict[int, int]:
    """How many live (unexpired, unrevoked) API tokens each user holds (one query)."""
    ids = list(user_ids)
    counts = tokens.active_count_by_user(ids)
    return {pk: counts.get(pk, 0) for pk in ids}


# --- Rows -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeldRole:
    role: str
    where: str
    via: str
    expires_at: datetime | None

    def as_text(self) -> str:
        until = f", until {_utc(self.expires_at)}" if self.expires_at else ""
        return f"{self.role} @ {self.where} ({self.via}{until})"


@dataclass(frozen=True)
class ReviewRow:
    user: User
    roles: list[HeldRole]
    mfa: str
    tokens: int

    @property
    def name(self) -> str:
        return self.user.get_full_name()


def _where(site_id: int | None, codes: dict[int, str]) -> str:
    if site_id is None:
        return gettext(ALL_SITES)
    if site_id in codes:
        return codes[site_id]
    return gettext("site #%(id)s") % {"id": site_id}


def rows() -> list[ReviewRow]:
    users = list(User.objects.order_by("username"))
    ids = [user.pk for user in users]
    held = access.grants(users)
    codes = dict(Site.objects.values_list("pk", "code"))
    mfa, tokens = mfa_status_by_user(ids), token_count_by_user(ids)
    return [
        ReviewRow(
            user=user,
            roles=[
                HeldRole(grant.role.label, _where(grant.site_id, codes), grant.via, grant.expires_at)
                for grant in held[user.pk]
            ],
            mfa=mfa.get(user.pk, "—"),
            tokens=tokens.get(user.pk, 0),
        )
        for user in users
    ]


# --- CSV ------------------------------------------------------------------------------------------
COLUMNS = [
    "username",
    "name",
    "email",
    "active",
    "staff",
    "superuser",
    "roles",
    "last_login_utc",
    "date_joined_utc",
    "mfa",
    "api_tokens",
]


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _yes(value: bool) -> str:
    return "yes" if value else "no"


class _Line:
    def write(self, value: str) -> str:
        return value


def export_csv(review: list[ReviewRow]) -> Iterator[str]:
    """One line per user; a cell a spreadsheet would take for a formula starts with a quote. The
    cells are machine-readable: in English whatever the language of the page (the caller builds
    `review` in English too)."""
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for row in review:
        with translation.override(None):
            line = _csv_line(writer, row)
        yield line


def _csv_line(writer, row: ReviewRow) -> str:
    user = row.user
    cells = [
        user.get_username(),
        row.name,
        user.email,
        _yes(user.is_active),
        _yes(user.is_staff),
        _yes(user.is_superuser),
        "; ".join(role.as_text() for role in row.roles),
        _utc(user.last_login),
        _utc(user.date_joined),
        row.mfa,
    ]
    return writer.writerow([neutralise(cell) for cell in cells] + [row.tokens])
