"""Reading the audit trail (C1, Annex 11 §9): filters, keyset pages, streaming export, and the
chain head published outside the database so a rewrite of the whole table is detectable.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from audit.filters import TEXT_MAX, AuditEventFilterSet
from audit.models import AuditEvent
from core import clock
from core.refusals import filter_errors

logger = logging.getLogger("audit.heads")
PAGE = 50
# The page's names first (its form), then the API's spellings of the same columns (audit.filters).
FILTERS = ("start", "end", "actor", "action", "object", "site", "text")
PARAMETERS = (*FILTERS, "actor_name", "object_id", "object_type", "site_code")


@dataclass
class Filters:
    """The trail's filters as the page, the exports and the benchmarks pass them around; the
    validation and the filtering are `AuditEventFilterSet`'s, the same as the API's."""

    start: str = ""
    end: str = ""
    actor: str = ""
    action: str = ""
    object: str = ""
    site: str = ""
    text: str = ""
    actor_name: str = ""
    object_id: str = ""
    object_type: str = ""
    site_code: str = ""

    @classmethod
    def from_query(cls, query) -> Filters:
        return cls(**{name: (query.get(name) or "").strip() for name in PARAMETERS})

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in PARAMETERS if getattr(self, name)}

    def as_recorded(self) -> dict:
        """The filters as asked, storable in the trail even when refused: PostgreSQL's JSON holds no
        NUL character, and a refused value longer than any column is cut to that length."""
        return {name: value.replace("\x00", "\ufffd")[:TEXT_MAX] for name, value in self.as_dict().items()}

    def filterset(self, queryset: QuerySet | None = None) -> AuditEventFilterSet:
        return AuditEventFilterSet(
            self.as_dict(), queryset=queryset if queryset is not None else AuditEvent.objects.all()
        )

    def errors(self) -> list[str]:
        filterset = self.filterset(AuditEvent.objects.none())
        return [] if filterset.is_valid() else filter_errors(filterset)

    def apply(self, queryset: QuerySet) -> QuerySet:
        """Every filter is an indexed column or a prefix of one (see the indexes on AuditEvent)."""
        filterset = self.filterset(queryset)
        return filterset.qs if filterset.is_valid() else queryset.none()


def page(
    filters: Filters, before: int | None = None, after: int | None = None
) -> tuple[list, int | None, int | None]:
    """One keyset page, newest first: (events, older cursor, newer cursor). New events never shift it."""
    queryset = filters.apply(AuditEvent.objects.all())
    if after is not None:
        rows = list(queryset.filter(seq__gt=after).order_by("seq")[: PAGE + 1])
        has_newer = len(rows) > PAGE
        rows = list(reversed(rows[:PAGE]))
        has_older = (
            queryset.filter(seq__lte=after).order_by("-seq").values_list("seq", flat=True).first() is not None
        )
    else:
        queryset_page = queryset.filter(seq__lt=before) if before is not None else queryset
        rows = list(queryset_page.order_by("-seq")[: PAGE + 1])
        has_older = len(rows) > PAGE
        rows = rows[:PAGE]
        has_newer = (
            before is not None
            and queryset.filter(seq__gte=before).order_by("seq").values_list("seq", flat=True).first()
            is not None
        )  # always on the seq index, never a table scan
    older = rows[-1].seq if rows and has_older else None
    newer = rows[0].seq if rows and has_newer else None
    return rows, older, newer


# --- Export ----------------------------------------------------------------------------------------
COLUMNS = [
    "seq",
    "occurred_at",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "site_code",
    "reason",
    "before",
    "after",
    "request_id",
    "ip_address",
    "prev_hash",
    "hash",
]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """A spreadsheet never runs a cell from the trail as a formula (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA) else value


def _cells(event: AuditEvent) -> list[str]:
    cells = []
    for column in COLUMNS:
        value = getattr(event, column)
        if isinstance(value, (dict, list)):
            value = json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
        elif isinstance(value, datetime):
            value = value.isoformat()
        cells.append(neutralise("" if value is None else str(value)))
    return cells


class _Line:
    def write(self, value: str) -> str:
        return value


def _events(filters: Filters) -> Iterator[AuditEvent]:
    # A server-side cursor on PostgreSQL: memory stays flat however many events match.
    return filters.apply(AuditEvent.objects.order_by("seq")).iterator(chunk_size=2000)


def export_csv(filters: Filters) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for event in _events(filters):
        yield writer.writerow(_cells(event))


def export_jsonl(filters: Filters) -> Iterator[str]:
    for event in _events(filters):
        yield (
            json.dumps(
                {column: getattr(event, column) for column in COLUMNS}, cls=DjangoJSONEncoder, sort_keys=True
            )
            + "\n"
        )


# --- The chain head, published outside the database --------------------------------------------------
def heads_file() -> Path:
    return Path(settings.AUDIT_HEADS_FILE)


def publish_head() -> dict:
    """Append today's head (sequence and hash) to an append-only file and the log."""
    from audit.models import ChainHead

    head = ChainHead.objects.filter(id=1).first()
    entry = {
        "published_at": clock.now().isoformat(),
        "seq": head.seq if head else 0,
        "hash": head.hash if head else "",
    }
    path = heads_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    logger.info("audit chain head %s", json.dumps(entry, sort_keys=True))
    return entry


def published_heads() -> list[dict]:
    path = heads_file()
    if not path.exists():
        return []
    heads = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("seq"), int) and entry.get("hash"):
            heads.append(entry)
    return heads
