"""The fast verifier (audit.chain) writes exactly compute_hash()'s canonical form and reports exactly
what the model-by-model verifier reported (C1: existing trails in plants must still verify)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from audit import chain, services
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.services import Verification, compute_hash

TRICKY_TEXT = [
    "",
    "plain",
    'quotes " and \\ backslash',
    "unicode é ß 中文 😀 \u2028 \u2029",
    "control \x01\x07\x08\x0b\x0c\x1f\t\r\n",
    "</script>&<>'",
    '=HYPERLINK("x")',
]
TRICKY_JSON = [
    None,
    {},
    [],
    {"state": "draft"},
    {"b": 1, "a": [1, 2.5, -0.0, 1e-7, 1.5e300, None, True, False], "é": {"z": "ü", "y": []}},
    {"nested": {"deep": {"deeper": [{"k": "v\u0001"}, "x"]}}, "long_key_first": 1, "k": 2},
    {"quote": 'a"b', "slash": "a\\b/c", "nl": "a\nb"},
    [1, "two", {"three": 3}],
    "just a string",
    12345678901234567890,
    0.1,
]
MOMENTS = [
    datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 10, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, 0, 100000, tzinfo=UTC),
]
ADDRESSES = [None, "10.0.0.1", "2001:db8::1", "::1", "::ffff:10.0.0.1", "fe80::1:2:3:4"]


def _events(count: int = 40) -> list[AuditEvent]:
    events = []
    for n in range(count):
        events.append(
            AuditEvent(
                seq=n + 1,
                occurred_at=MOMENTS[n % len(MOMENTS)] + timedelta(days=n),
                actor_id=None if n % 3 == 0 else n * 1000,
                actor_name=TRICKY_TEXT[n % len(TRICKY_TEXT)][:150],
                action=f"tests.tricky.{n}",
                object_type=TRICKY_TEXT[(n + 1) % len(TRICKY_TEXT)][:100],
                object_id=TRICKY_TEXT[(n + 2) % len(TRICKY_TEXT)][:64],
                object_repr=TRICKY_TEXT[(n + 3) % len(TRICKY_TEXT)],
                site_code=("BER", "", "ü")[n % 3],
                before=TRICKY_JSON[n % len(TRICKY_JSON)],
                after=TRICKY_JSON[(n + 5) % len(TRICKY_JSON)],
                request_id=TRICKY_TEXT[(n + 4) % len(TRICKY_TEXT)][:64],
                ip_address=ADDRESSES[n % len(ADDRESSES)],
                reason=TRICKY_TEXT[(n + 5) % len(TRICKY_TEXT)],
                prev_hash="",
            )
        )
    return events


def _row(event: AuditEvent) -> tuple:
    return tuple(getattr(event, name) for name in chain.COLUMNS[:-1]) + (getattr(event, "hash", ""),)


def test_genesis_is_the_models():
    assert chain.GENESIS_HASH == GENESIS_HASH == "0" * 64


@pytest.mark.parametrize("event", _events(), ids=lambda e: str(e.seq))
def test_fast_canonical_form_equals_compute_hash(event):
    event.prev_hash = hashlib.sha256(str(event.seq).encode()).hexdigest()
    assert chain.row_hash_values(_row(event)) == compute_hash(event)


@pytest.mark.parametrize("value", TRICKY_JSON, ids=str)
def test_canonical_json_of_database_text(value):
    """PostgreSQL's jsonb text has its own key order and spacing; Django loads it with json.loads."""
    expected = json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    for text in (json.dumps(value), json.dumps(value, indent=2), json.dumps(value, sort_keys=True)):
        assert chain.canonical_json_text(text) == expected
        assert chain.canonical_json_text(text) == expected  # memoised: the same answer


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_timestamp_from_postgres_text(moment):
    expected = json.dumps(services._timestamp(moment))
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    assert chain.iso_timestamp_text(text + "+00") == expected
    assert chain.iso_timestamp_text(moment.isoformat()) == expected  # anything else: parsed


# --- Against the database ------------------------------------------------------------------------------
def _store(events: list[AuditEvent]) -> list[AuditEvent]:
    previous = GENESIS_HASH
    for event in events:
        event.prev_hash = previous
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        previous = event.hash
    ChainHead.objects.update_or_create(id=1, defaults={"seq": events[-1].seq, "hash": previous})
    return events


class _Collect:
    def __init__(self):
        self.rows = []

    def feed(self, rows):
        self.rows.extend(rows)
        return True


@pytest.mark.django_db
def test_rows_as_the_database_gives_them_hash_like_model_instances():
    _store(_events())
    collect = _Collect()
    if connection.vendor == "postgresql":  # text tuples
        services._walk_postgres(collect, chunk_size=7)
        row_hash = chain.row_hash_text
    else:  # Python values
        services._walk_values(collect, chunk_size=7)
        row_hash = chain.row_hash_values
    models = {event.seq: event for event in AuditEvent.objects.all()}
    assert [row[0] for row in collect.rows] == sorted(models)
    for row in collect.rows:
        assert row_hash(row) == compute_hash(models[row[0]]), row[0]
    # (Not ok on PostgreSQL: jsonb stores numbers as numeric, so -0.0 and 1.5e300 come back changed and
    # the hash computed before the save no longer matches; the old verifier said the same.)
    assert services.verify(chunk_size=7) == _reference_verify()


def _reference_verify() -> Verification:
    """The model-by-model verifier the fast one replaced (v0.37), kept as the oracle. On PostgreSQL
    the trail is in lanes and the global sequence may have gaps: no gap check there, a missing event
    is a broken link (these chains are all in lane 1)."""
    lanes = connection.vendor == "postgresql"
    from audit.trail import published_heads

    expected_prev, expected_seq, count, last_hash = GENESIS_HASH, 1, 0, GENESIS_HASH
    published = {entry["seq"]: entry for entry in published_heads()}
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=5000):
        count += 1
        head_then = published.get(expected_seq if lanes else event.seq)  # lanes: the lane's n-th event
        differs = head_then is not None and head_then["hash"] != event.hash
        rewritten = Verification(
            False,
            count,
            last_hash,
            event.seq,
            f"#{event.seq} differs from the head published {head_then and head_then['published_at']}: "
            "the trail was rewritten",
        )
        if differs and event.seq == expected_seq and not lanes:
            return rewritten
        if event.seq != expected_seq and not lanes:
            return Verification(False, count, last_hash, event.seq, f"sequence gap before #{event.seq}")
        if event.prev_hash != expected_prev:
            return Verification(
                False, count, last_hash, event.seq, f"#{event.seq} does not link to its predecessor"
            )
        if differs and lanes:  # the link first: it says which lane, and which of its events
            return rewritten
        if compute_hash(event) != event.hash:
            return Verification(
                False, count, last_hash, event.seq, f"#{event.seq} content does not match its hash"
            )
        expected_prev = last_hash = event.hash
        expected_seq += 1
    beyond = [seq for seq in published if seq > count]
    if beyond:
        return Verification(
            False,
            count,
            last_hash,
            count + 1,
            f"a head published for #{max(beyond)} but the table ends at #{count}: events were removed",
        )
    head = ChainHead.objects.filter(id=1).first()
    if head is not None and (head.seq != count or head.hash != last_hash):
        return Verification(
            False,
            count,
            last_hash,
            count + 1 if head.seq > count else head.seq,
            f"chain head says #{head.seq}, table ends at #{count}",
        )
    return Verification(True, count, last_hash, None)


def _raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


TAMPERING = {
    "intact": [],
    "edited content": [("UPDATE audit_auditevent SET reason = 'x' WHERE seq = 9", ())],
    "edited link": [("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 4", ("f" * 64,))],
    "deleted middle": [("DELETE FROM audit_auditevent WHERE seq = 5", ())],
    "deleted first": [("DELETE FROM audit_auditevent WHERE seq = 1", ())],
    "deleted last": [("DELETE FROM audit_auditevent WHERE seq = 12", ())],
    "head moved": [("UPDATE audit_chainhead SET seq = 11", ())],
    "head hash": [("UPDATE audit_chainhead SET hash = %s", ("e" * 64,))],
    "seq shifted": [("UPDATE audit_auditevent SET seq = seq + 100 WHERE seq = 12", ())],
    "bad hash at first": [("UPDATE audit_auditevent SET hash = %s WHERE seq = 1", ("d" * 64,))],
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(TAMPERING))
@pytest.mark.parametrize("published", [False, True])
def test_verify_reports_what_the_model_verifier_reported(case, published, settings, tmp_path):
    settings.AUDIT_HEADS_FILE = tmp_path / "heads.jsonl"
    events = _store(_events(12))
    if published:
        heads = [
            {"published_at": "2026-01-01T00:00:00+00:00", "seq": 6, "hash": events[5].hash},
            {"published_at": "2026-01-02T00:00:00+00:00", "seq": 10, "hash": "c" * 64},
            {"published_at": "2026-01-03T00:00:00+00:00", "seq": 12, "hash": events[11].hash},
        ]
        settings.AUDIT_HEADS_FILE.write_text("".join(json.dumps(h) + "\n" for h in heads))
    for sql, params in TAMPERING[case]:
        _raw(sql, params)
    expected = _reference_verify()
    for chunk_size in (1, 5, 20_000):
        assert services.verify(chunk_size=chunk_size) == expected, (case, chunk_size)


PARALLEL_TAMPERING = {
    "intact": [],
    "edited upper": [("UPDATE audit_auditevent SET reason = 'x' WHERE seq = 19", ())],
    "edited lower": [("UPDATE audit_auditevent SET reason = 'x' WHERE seq = 3", ())],
    "deleted at the boundary": [("DELETE FROM audit_auditevent WHERE seq = 10", ())],
    "deleted after the boundary": [("DELETE FROM audit_auditevent WHERE seq = 11", ())],
    "boundary link": [("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 11", ("f" * 64,))],
    "deleted last": [("DELETE FROM audit_auditevent WHERE seq = 20", ())],
}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", list(PARALLEL_TAMPERING))
def test_two_processes_report_what_one_pass_reports(case, settings, tmp_path, monkeypatch):
    """verify(workers=2): the upper half (seq > 10) in a child process on its own connection."""
    started = []
    walk_in_two = services._walk_in_two

    def spy(*args, **kwargs):
        started.append(walk_in_two(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(services, "_walk_in_two", spy)
    settings.AUDIT_HEADS_FILE = tmp_path / "heads.jsonl"
    events = _store(_events(20))
    heads = [{"published_at": "2026-01-01T00:00:00+00:00", "seq": 15, "hash": events[14].hash}]
    settings.AUDIT_HEADS_FILE.write_text("".join(json.dumps(h) + "\n" for h in heads))
    for sql, params in PARALLEL_TAMPERING[case]:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            try:
                cursor.execute(sql, params)
            finally:
                cursor.execute("SET session_replication_role = origin")
    expected = _reference_verify()
    assert services.verify(workers=2, parallel_from=2) == expected
    assert started == [True]  # the child process ran (no fallback to one pass)
    assert services.verify(workers=1) == expected
