"""Input no parser or database takes, refused as bad input (400) wherever it enters.

- A NUL character: PostgreSQL stores none in text, JSON or a query parameter, so it was a 500 there
  (changecontrol.middleware.InputGuardMiddleware refuses it in the path, headers, query string, form
  fields and JSON bodies, never in an uploaded file's contents).
- A date outside the years anyone means: 9999-12-31 plus a day, or 0001-01-01 minus an offset, is an
  OverflowError in date arithmetic. Every date or time a caller gives passes `check_moment`.
- CR or LF in a value that reaches a mail header (a subject): `no_line_breaks` refuses it on input.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from django.core.exceptions import BadRequest, ValidationError
from django.utils.translation import gettext, gettext_lazy, gettext_noop

EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
RANGE_TEXT = f"{EARLIEST.year}–{LATEST.year}"
NUL = "\x00"
# English, as the API answers it; pages show it translated (changecontrol.middleware.bad_request).
NUL_MESSAGE = gettext_noop("Null characters are not allowed.")
LINE_BREAK_MESSAGE = gettext_lazy("Line breaks are not allowed here.")


class BadInput(BadRequest):
    """Bad input found past the form or serializer that should have caught it: a 400 on pages and
    the API alike (InputGuardMiddleware answers it), never a 500.

    `message` is English, marked with gettext_noop where it is written (with `%(name)s` placeholders
    filled from `params`): the API answers in English, a page shows it translated."""

    def __init__(self, message: str, field: str | None = None, params: dict | None = None):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params or {}
        self.field = field


def has_nul(value) -> bool:
    """True if a NUL character is anywhere in a string, or in a key or value of a parsed JSON body."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, Mapping):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(item) for item in value)
    return False


def nul_field(data: Mapping) -> str | None:
    """The first key of a mapping (a QueryDict's lists, a JSON object) whose name or value holds NUL."""
    items = data.lists() if hasattr(data, "lists") else data.items()
    for key, value in items:
        if has_nul(key) or has_nul(value):
            return str(key).replace(NUL, "\ufffd")
    return None


def in_range(value: date | datetime) -> bool:
    day = value.date() if isinstance(value, datetime) else value
    return EARLIEST <= day <= LATEST


def check_moment(value: date | datetime, name: str | None = None):
    """The date or time as given, or a ValidationError (which forms, serializers and FilterSets all
    report as a field error) if it lies outside the years the portal plans in."""
    if not in_range(value):
        message = gettext("Give a date in the years %(range)s.") % {"range": RANGE_TEXT}
        raise ValidationError({name: message} if name else message, code="out_of_range")
    return value


def parse_date(value: str, name: str) -> date:
    """A calendar day, YYYY-MM-DD, within the portal's years; anything else is BadInput."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(
            gettext_noop("%(name)s: give a date as YYYY-MM-DD."), field=name, params={"name": name}
        ) from None
    if not in_range(day):
        raise BadInput(
            gettext_noop("%(name)s: give a date in the years %(range)s."),
            field=name,
            params={"name": name, "range": RANGE_TEXT},
        )
    return day


def no_line_breaks(value: str) -> None:
    """A validator for any value that ends up in a mail header (an RFC title, a release name): a CR or
    LF would split the header (header injection) and Django refuses to send such a mail."""
    if isinstance(value, str) and any(ch in value for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        raise ValidationError(LINE_BREAK_MESSAGE, code="line_break")
