"""How an RFC reads in a row of a long list (the RFC list, the approval queue): one place, its labels
and address worked out once per page (core.listing), not once per row."""

from __future__ import annotations

from collections.abc import Callable

from core import listing
from releases.versioning import ChangeClass


def rfc_cells() -> Callable[[object], dict]:
    """A function giving an RFC's cells: its address, number, title, risk and class badges."""
    classes = listing.labels(ChangeClass.choices)
    detail = listing.address("releases:detail")

    def cells(rfc) -> dict:
        return {
            "url": detail(rfc.uuid),
            "number": rfc.number,
            "title": rfc.title,
            "high_risk": rfc.is_high_risk,
            "emergency": rfc.emergency,
            "change_class": rfc.change_class,
            "class_label": classes.get(rfc.change_class, rfc.change_class),
        }

    return cells
