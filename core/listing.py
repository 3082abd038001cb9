"""What the rows of a long list need, worked out once per page instead of once per row.

A page of 25 or 50 rows that calls `get_FOO_display()` and `{% url %}` in every row spends more time
there than on its queries: `get_FOO_display()` hashes every label of the field's choices on each
call (each a lazy translation, translated again), and each `reverse()` walks the URL resolver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import UUID

from django.urls import reverse

# Arguments no real row has, put where the row's own goes (their text appears nowhere else in an
# address): `<uuid:…>` and `<int:…>` converters write a value as its str().
_SENTINELS = {UUID: UUID("00000000-0000-4000-8000-5e471e1a0000"), int: 907_199_254_740_993}


def labels(choices: Iterable[tuple[str, object]]) -> dict[str, str]:
    """{value: label in the active language}; look a value up with `.get(value, value)`, as
    `get_FOO_display()` answers a value outside the choices with the value itself."""
    return {value: str(label) for value, label in choices}


def address(viewname: str, kind: type = UUID) -> Callable[[object], str]:
    """`reverse(viewname, args=[x])` for many x of one kind (UUID or int), the resolver asked once."""
    sentinel = _SENTINELS[kind]
    before, after = reverse(viewname, args=[sentinel]).split(str(sentinel))
    return lambda value: f"{before}{value}{after}"
