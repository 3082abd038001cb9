"""Reading the audit trail (C1, Annex 11 §9): filters, keyset pages, streaming export, and the
chain head published outside the database so a rewrite of the whole table is detectable.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import EmptyResultSet
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
    # The FilterSet once validated (errors()), so apply() filters without validating again.
    _checked: AuditEventFilterSet | None = field(default=None, init=False, repr=False, compare=False)

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
        if not self.as_dict():  # the whole trail, nothing to validate (the page's first and usual view)
            return []
        self._checked = self.filterset(AuditEvent.objects.none())
        return [] if self._checked.is_valid() else filter_errors(self._checked)

    def apply(self, queryset: QuerySet) -> QuerySet:
        """Every filter is an indexed column or a prefix of one (see the indexes on AuditEvent)."""
        if not self.as_dict():
            return queryset
        if self._checked is None or self._checked.data != self.as_dict():  # (a field changed since)
            self.errors()
        if not self._checked.is_valid():
            return queryset.none()
        return self._checked.filter_queryset(queryset)


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
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\x00")
_SEPARATOR = "\x1f"


def _needs_care(text: str) -> bool:
    """A cell (after the separator) starts like a formula, or a quote, comma or line break is
    anywhere (substring searches: far cheaper than a regular expression per row)."""
    return (
        '"' in text
        or "," in text
        or "\n" in text
        or "\r" in text
        or "\x1f=" in text
        or "\x1f+" in text
        or "\x1f-" in text
        or "\x1f@" in text
        or "\x1f\t" in text
        or "\x1f\x00" in text
    )


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


class _Chunk(list):
    """A csv.writer target collecting a batch of rows into one chunk of the response."""

    def write(self, value: str) -> None:
        self.append(value)


def _events(filters: Filters) -> Iterator[AuditEvent]:
    # A server-side cursor on PostgreSQL: memory stays flat however many events match.
    return filters.apply(AuditEvent.objects.order_by("seq")).iterator(chunk_size=2000)


def _text_timestamps(connection) -> bool:
    """PostgreSQL writes timestamptz as ISO text in UTC on this connection (Django's default)."""
    info = connection.connection.info
    return (info.parameter_status("DateStyle") or "").startswith("ISO") and (
        info.parameter_status("TimeZone") or ""
    ) in ("UTC", "Etc/UTC")


def _export_timestamp(text: str) -> str:
    """PostgreSQL's '2026-01-02 03:04:05.6789+00' as datetime.isoformat() writes it for UTC."""
    if text[-3:] == "+00" and text[10:11] == " ":
        if len(text) == 22:
            return text[:10] + "T" + text[11:19] + "+00:00"
        if 23 < len(text) <= 29 and text[19] == ".":
            return text[:10] + "T" + text[11:-3].ljust(15, "0") + "+00:00"
    return datetime.fromisoformat(text).isoformat()


_json_memo: dict[str, tuple[str, str]] = {}


def _csv_quoted(cell: str) -> str:
    """The cell as csv.writer (excel dialect, QUOTE_MINIMAL) writes it in a row of several cells."""
    if '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    if "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell + '"'
    return cell


def _export_json(text: str | None) -> tuple[str, str]:
    """A before/after cell from PostgreSQL's jsonb text, as _cells() writes the loaded value:
    (the cell neutralised, the same as CSV writes it). Memoised: payloads repeat."""
    if text is None:
        return "", ""
    done = _json_memo.get(text)
    if done is None:
        value = json.loads(text)
        if isinstance(value, (dict, list)):
            cell = json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
        else:
            cell = "" if value is None else str(value)
        cell = neutralise(cell)
        done = (cell, _csv_quoted(cell))
        if len(_json_memo) >= 4096:
            _json_memo.clear()
        _json_memo[text] = done
    return done


def _csv_postgres(filters: Filters, chunk_size: int) -> Iterator[str]:
    """The same CSV as _cells() and csv.writer from tuples of PostgreSQL's text (no model instances,
    no datetime or JSON objects), streamed through a server-side cursor, one response chunk per batch
    of rows. A row whose cells need no quoting and no neutralising (almost all) is joined directly;
    any other row goes through neutralise() and csv.writer as before."""
    from django.db import connection
    from psycopg.types.string import TextLoader

    queryset = filters.apply(AuditEvent.objects.order_by("seq")).values_list(*COLUMNS)
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return
    connection.ensure_connection()
    text_times = _text_timestamps(connection)
    chunk = _Chunk()
    writer = csv.writer(chunk)
    separator, needs_care = _SEPARATOR, _needs_care
    with connection.chunked_cursor() as cursor:
        raw = cursor.cursor
        for name in ("timestamptz", "jsonb", "inet") if text_times else ("jsonb", "inet"):
            raw.adapters.register_loader(name, TextLoader)
        raw.itersize = chunk_size
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            for row in rows:
                occurred = row[1]
                if not text_times:
                    occurred = occurred.isoformat()
                elif len(occurred) == 29 and occurred[26:] == "+00" and occurred[10] == " ":
                    occurred = occurred[:10] + "T" + occurred[11:26] + "+00:00"
                else:
                    occurred = _export_timestamp(occurred)
                before, after = _export_json(row[9]), _export_json(row[10])
                seq, ip_address = str(row[0]), row[12] or ""
                # One search over the row's text cells: does any start like a formula, or hold a
                # quote, comma or line break? (A separator inside a value can only cause a needless
                # careful pass, never a miss.)
                if needs_care(
                    separator.join(
                        (
                            "",
                            seq,
                            occurred,
                            row[2],
                            row[3],
                            row[4],
                            row[5],
                            row[6],
                            row[7],
                            row[8],
                            row[11],
                            ip_address,
                            row[13],
                            row[14],
                        )
                    )
                ):
                    cells = [
                        seq,
                        occurred,
                        *row[2:9],
                        before[0],
                        after[0],
                        row[11],
                        ip_address,
                        row[13],
                        row[14],
                    ]
                    writer.writerow([neutralise(cell) for cell in cells])
                else:
                    chunk.append(
                        ",".join(
                            (
                                seq,
                                occurred,
                                row[2],
                                row[3],
                                row[4],
                                row[5],
                                row[6],
                                row[7],
                                row[8],
                                before[1],
                                after[1],
                                row[11],
                                ip_address,
                                row[13],
                                row[14],
                            )
                        )
                        + "\r\n"
                    )
            yield "".join(chunk)
            chunk.clear()


def export_csv(filters: Filters, chunk_size: int = 5000) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    from django.db import connection

    if connection.vendor == "postgresql":
        yield from _csv_postgres(filters, chunk_size)
        return
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
    """Append today's heads to an append-only file and the log: lane 1's count and tip as "seq" and
    "hash" (what an entry from before lanes holds), every other lane with events under "lanes"
    ({"2": {"seq": count, "hash": tip}, ...}), all read in one query."""
    from audit.models import ChainHead

    heads = {head.id: head for head in ChainHead.objects.order_by("id")}
    head = heads.get(1)
    entry = {
        "published_at": clock.now().isoformat(),
        "seq": head.seq if head else 0,
        "hash": head.hash if head else "",
    }
    others = {str(lane): {"seq": h.seq, "hash": h.hash} for lane, h in heads.items() if lane != 1 and h.seq}
    if others:
        entry["lanes"] = others
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
