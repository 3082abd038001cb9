"""Reading the audit trail (C1, Annex 11 §9): filters, keyset pages, streaming export, and the
chain head published outside the database so a rewrite of the whole table is detectable.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_date

from audit import actions
from audit.models import AuditEvent
from core import clock

logger = logging.getLogger("audit.heads")
PAGE = 50
FILTERS = ("start", "end", "actor", "action", "object", "site", "text")


def _date(value: str):
    try:
        return parse_date(value) if value else None
    except ValueError:  # well formed but not a day (2026-13-45)
        return None


@dataclass
class Filters:
    start: str = ""
    end: str = ""
    actor: str = ""
    action: str = ""
    object: str = ""
    site: str = ""
    text: str = ""

    @classmethod
    def from_query(cls, query) -> Filters:
        return cls(**{name: (query.get(name) or "").strip()[:200] for name in FILTERS})

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}

    def errors(self) -> list[str]:
        return [
            f"{name.capitalize()} must be a date (YYYY-MM-DD)."
            for name in ("start", "end")
            if getattr(self, name) and _date(getattr(self, name)) is None
        ]

    def apply(self, queryset: QuerySet) -> QuerySet:
        """Every filter is an indexed column or a prefix of one (see the indexes on AuditEvent)."""
        start, end = _date(self.start), _date(self.end)
        # Time rises with seq (record() stamps it under the chain-head lock), so a date range becomes a
        # seq range found on the occurred_at index: the page query stays a bounded scan of the seq index.
        if start:
            moment = datetime.combine(start, time(0), tzinfo=UTC)
            first = (
                AuditEvent.objects.filter(occurred_at__gte=moment)
                .order_by("occurred_at", "seq")
                .values_list("seq", flat=True)
                .first()
            )
            queryset = queryset.filter(seq__gte=first, occurred_at__gte=moment) if first else queryset.none()
        if end:
            moment = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
            last = (
                AuditEvent.objects.filter(occurred_at__lt=moment)
                .order_by("-occurred_at", "-seq")
                .values_list("seq", flat=True)
                .first()
            )
            queryset = queryset.filter(seq__lte=last, occurred_at__lt=moment) if last else queryset.none()
        if self.actor:
            queryset = queryset.filter(actor_name=self.actor)
        if self.action:
            queryset = queryset.filter(actions.starting_with(self.action))
        if self.object:
            queryset = queryset.filter(object_id=self.object)
        if self.site:
            queryset = queryset.filter(site_code=self.site)
        if self.text:
            queryset = queryset.filter(Q(reason__icontains=self.text) | Q(object_repr__icontains=self.text))
        return queryset


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
