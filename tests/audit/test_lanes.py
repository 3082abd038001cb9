"""Audit writers without a global lock (docs/audit-chain.md, "Writers without a global lock"): on
PostgreSQL the trail is K independent hash chains ("lanes"); concurrent writers append to different
lanes at the same time, a transaction keeps one lane, and the verifier still finds every kind of
tampering, at the event it concerns."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction

from audit import chain, trail
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.services import compute_hash, record, verify
from tests.migrating import migrate_to, migrate_to_latest

pytestmark = pytest.mark.postgres


def _raw(sql: str, params=()) -> None:
    """Change the table behind the application's back (the append-only trigger off for this)."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = origin")


def _in_lane(lane: int, action: str = "tests.lane.write") -> AuditEvent:
    """One event in the given lane: this connection prefers the lane it used last (nobody else holds
    it here, so it gets it)."""
    connection.audit_lane = lane
    event = record(action, actor_name=f"lane-{lane}", after={"lane": lane})
    assert connection.audit_lane == lane
    return event


def _two_lanes() -> dict[int, AuditEvent]:
    """#1 L1, #2 L2, #3 L1, #4 L2, #5 L2, #6 L1 (in seq order)."""
    events = [_in_lane(lane) for lane in (1, 2, 1, 2, 2, 1)]
    return {n: event for n, event in enumerate(events, start=1)}


def _lanes_of(events: dict[int, AuditEvent]) -> dict[int, int]:
    return {n: event.after["lane"] for n, event in events.items()}


@pytest.mark.django_db
def test_lanes_start_from_distinct_geneses_and_chain_on_their_own():
    events = _two_lanes()
    assert events[1].prev_hash == GENESIS_HASH and events[2].prev_hash == chain.lane_genesis(2)
    assert (
        chain.lane_genesis(2) == "0" * 60 + "0002" and len(set(chain.geneses().values())) == chain.MAX_LANES
    )
    assert (events[3].prev_hash, events[6].prev_hash) == (events[1].hash, events[3].hash)
    assert (events[4].prev_hash, events[5].prev_hash) == (events[2].hash, events[4].hash)
    assert [e.seq for e in events.values()] == sorted(e.seq for e in events.values())
    heads = {h.id: (h.seq, h.hash) for h in ChainHead.objects.filter(seq__gt=0)}
    assert heads == {1: (3, events[6].hash), 2: (3, events[5].hash)}
    assert ChainHead.objects.count() == 8  # settings.AUDIT_LANES on PostgreSQL
    result = verify()
    assert result.as_dict() == {"ok": True, "count": 6, "head": events[6].hash, "first_bad": None}


@pytest.mark.django_db
def test_one_lane_when_the_setting_says_one(settings):
    settings.AUDIT_LANES = 1
    connection.audit_lane = 5  # beyond the lanes: lane 1
    first = record("tests.lane.write", actor_name="alice")
    assert first.prev_hash == GENESIS_HASH and connection.audit_lane == 1
    assert verify().ok


@pytest.mark.django_db
def test_a_deleted_middle_event_of_a_lane_is_a_broken_link_at_the_next_event_of_that_lane():
    events = _two_lanes()
    _raw("DELETE FROM audit_auditevent WHERE seq = %s", [events[4].seq])
    result = verify()
    assert (result.ok, result.first_bad) == (False, events[5].seq)
    assert result.problem == f"#{events[5].seq} does not link to its predecessor"
    assert result.head == events[3].hash  # the last good event


@pytest.mark.django_db
def test_a_deleted_last_event_of_a_lane_is_a_head_mismatch():
    events = _two_lanes()
    _raw("DELETE FROM audit_auditevent WHERE seq = %s", [events[5].seq])
    result = verify()
    assert (result.ok, result.count, result.first_bad) == (False, 5, events[6].seq + 1)
    assert result.problem == "lane 2's chain head says #3, the lane ends at #2"


@pytest.mark.django_db
def test_a_head_behind_its_lane_names_the_lane_event_it_stops_at():
    events = _two_lanes()
    ChainHead.objects.filter(id=2).update(seq=2, hash=events[4].hash)
    result = verify()
    assert (result.ok, result.first_bad) == (False, events[4].seq)
    assert result.problem == "lane 2's chain head says #2, the lane ends at #3"


@pytest.mark.django_db
def test_edited_content_in_a_lane_is_named():
    events = _two_lanes()
    _raw("UPDATE audit_auditevent SET reason = 'forged' WHERE seq = %s", [events[4].seq])
    result = verify()
    assert (result.ok, result.first_bad, result.count) == (False, events[4].seq, 4)
    assert result.problem == f"#{events[4].seq} content does not match its hash"


@pytest.mark.django_db
def test_an_event_relinked_onto_another_lane_is_found():
    """Lane 1's last event re-pointed at lane 2's tip and re-hashed: every link holds, but lane 1 is
    now one event short of its head row (and lane 2 one longer)."""
    events = _two_lanes()
    moved = AuditEvent.objects.get(seq=events[6].seq)
    moved.prev_hash = events[5].hash
    moved.hash = compute_hash(moved)
    _raw(
        "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
        [moved.prev_hash, moved.hash, moved.seq],
    )
    result = verify()
    assert (result.ok, result.first_bad) == (False, moved.seq + 1)
    assert result.problem == "lane 1's chain head says #3, the lane ends at #2"


@pytest.mark.django_db
def test_an_event_linked_to_a_lane_that_does_not_exist_is_a_broken_link():
    events = _two_lanes()
    forged = AuditEvent.objects.get(seq=events[4].seq)
    forged.prev_hash = "e" * 64
    forged.hash = compute_hash(forged)
    _raw(
        "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
        [forged.prev_hash, forged.hash, forged.seq],
    )
    result = verify()
    assert (result.ok, result.first_bad) == (False, events[4].seq)
    assert result.problem == f"#{events[4].seq} does not link to its predecessor"


@pytest.mark.django_db
def test_a_lane_event_without_its_lanes_head_row_is_reported():
    events = _two_lanes()
    ChainHead.objects.filter(id=2).delete()
    result = verify()
    assert (result.ok, result.first_bad) == (False, events[6].seq + 1)
    assert result.problem == "lane 2 has 3 events but no chain head"


@pytest.mark.django_db
def test_published_heads_hold_every_lane_and_catch_a_rewritten_lane(settings, tmp_path):
    settings.AUDIT_HEADS_FILE = tmp_path / "heads.jsonl"
    events = _two_lanes()
    entry = trail.publish_head()
    assert (entry["seq"], entry["hash"]) == (3, events[6].hash)
    assert entry["lanes"] == {"2": {"seq": 3, "hash": events[5].hash}}  # empty lanes are not listed
    assert json.loads(settings.AUDIT_HEADS_FILE.read_text())["lanes"] == entry["lanes"]
    assert verify().ok
    # Lane 2 rewritten consistently (content, links, hashes and its head row): only the published
    # head can tell.
    previous = events[2].hash
    for n in (4, 5):
        event = AuditEvent.objects.get(seq=events[n].seq)
        event.reason, event.prev_hash = "rewritten", previous
        event.hash = compute_hash(event)
        _raw(
            "UPDATE audit_auditevent SET reason = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [event.reason, event.prev_hash, event.hash, event.seq],
        )
        previous = event.hash
    ChainHead.objects.filter(id=2).update(hash=previous)
    result = verify()
    assert (result.ok, result.first_bad) == (False, events[5].seq)
    assert result.problem == (
        f"#{events[5].seq} differs from the head published {entry['published_at']}: the trail was rewritten"
    )


@pytest.mark.django_db
def test_a_published_lane_head_beyond_its_lane_means_events_were_removed(settings, tmp_path):
    """An event moved from lane 1 onto lane 2 and both head rows made to agree: the links and the
    heads hold; the published heads do not."""
    settings.AUDIT_HEADS_FILE = tmp_path / "heads.jsonl"
    events = _two_lanes()
    trail.publish_head()
    moved = AuditEvent.objects.get(seq=events[6].seq)
    moved.prev_hash = events[5].hash
    moved.hash = compute_hash(moved)
    _raw(
        "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
        [moved.prev_hash, moved.hash, moved.seq],
    )
    ChainHead.objects.filter(id=1).update(seq=2, hash=events[3].hash)
    ChainHead.objects.filter(id=2).update(seq=4, hash=moved.hash)
    settings.AUDIT_HEADS_FILE.rename(tmp_path / "aside.jsonl")
    assert verify().ok  # without the published heads, a consistent rewrite inside the database
    (tmp_path / "aside.jsonl").rename(settings.AUDIT_HEADS_FILE)
    result = verify()
    assert (result.ok, result.first_bad) == (False, moved.seq + 1)
    assert (
        result.problem
        == "a head published for event 3 of lane 1 but the lane ends at event 2: events were removed"
    )


@pytest.mark.django_db
def test_an_entry_published_before_lanes_means_lane_one(settings, tmp_path):
    settings.AUDIT_HEADS_FILE = tmp_path / "heads.jsonl"
    events = _two_lanes()
    old = {"published_at": "2026-01-01T00:00:00+00:00", "seq": 2, "hash": events[3].hash}
    settings.AUDIT_HEADS_FILE.write_text(json.dumps(old) + "\n")
    assert verify().ok
    old["hash"] = events[1].hash  # lane 1's 2nd event is #3, not #1
    settings.AUDIT_HEADS_FILE.write_text(json.dumps(old) + "\n")
    result = verify()
    assert (result.ok, result.first_bad) == (False, events[3].seq)


@pytest.mark.django_db
def test_a_transaction_keeps_one_lane_while_another_writer_holds_lane_one():
    """All of a transaction's events link to each other, in the lane it took first."""
    record("tests.lane.first", actor_name="first")  # the trail exists (a new trail starts in lane 1)
    with transaction.atomic():
        events = [_in_lane(3)] + [record("tests.lane.write", actor_name="same") for _ in range(3)]
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert events[0].prev_hash == chain.lane_genesis(3)
    assert ChainHead.objects.get(id=3).seq == 4
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_transaction_skips_a_lane_held_by_another_and_keeps_its_own():
    held, release, errors = threading.Event(), threading.Event(), []

    def holder() -> None:
        try:
            with transaction.atomic():
                connection.audit_lane = 1
                record("tests.lane.held", actor_name="holder")
                held.set()
                assert release.wait(timeout=30)
        except Exception as exc:  # asserted below
            errors.append(exc)
            held.set()
        finally:
            connections.close_all()

    record("tests.lane.first", actor_name="first")  # the lanes exist, committed (a fresh database's
    # first writer creates them: until it commits, other writers wait for its rows)
    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=30)
        connection.audit_lane = 1
        with transaction.atomic():  # lane 1 is held: this one takes the next free lane, and keeps it
            events = [record("tests.lane.write", actor_name="other") for _ in range(3)]
    finally:
        release.set()
        thread.join(timeout=30)
    assert errors == []
    assert events[0].prev_hash == chain.lane_genesis(2)
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert verify().ok and verify().count == 5


@pytest.mark.django_db(transaction=True)
def test_eight_writers_overlap_in_different_lanes_and_leave_a_valid_trail():
    """Eight threads, each its own connection, each transaction open a while after its event (an
    in-transaction pause): the first transaction of every writer waits at a barrier until all eight
    hold a lane at the same time (with one global lock the barrier would break: proof of overlap)."""
    writers, per_writer, errors = 8, 4, []
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                with transaction.atomic():
                    record("tests.lane.write", actor_name=f"writer-{n}", after={"n": n, "i": i})
                    if i == 0:
                        barrier.wait(timeout=30)  # all eight transactions open, each with its lane
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_sleep(0.05)")
        except Exception as exc:  # asserted below
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    record("tests.lane.first", actor_name="first")  # the lanes exist, committed
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert AuditEvent.objects.exclude(action="tests.lane.first").count() == writers * per_writer
    assert {
        (a["n"], a["i"])
        for a in AuditEvent.objects.filter(actor_name__startswith="writer-").values_list("after", flat=True)
    } == {(n, i) for n in range(writers) for i in range(per_writer)}
    used = ChainHead.objects.filter(seq__gt=0)
    assert used.count() == writers  # eight transactions at once: eight lanes
    assert sum(h.seq for h in used) == writers * per_writer + 1
    result = verify()
    assert result.ok and result.count == writers * per_writer + 1


@pytest.mark.django_db(transaction=True)
def test_a_flushed_database_starts_the_sequence_again():
    """TransactionTestCase and transactional_db flush the tables: the lanes are created again and
    the sequence follows the table (from #1), so seq stays 1..n without a rollback."""
    first = record("tests.lane.write", actor_name="alice")
    assert first.seq == 1 and verify().ok


def test_a_trail_from_before_lanes_verifies_after_the_migration(migrator):
    """Events written with one chain head (id 1) and seq = head + 1, then the lanes migration: the old
    events are lane 1, unchanged; new writers continue lane 1 and open others."""
    old = migrate_to([("audit", "0004_text_search_trigram")])
    Event, Head = old.get_model("audit", "AuditEvent"), old.get_model("audit", "ChainHead")
    previous, hashes = GENESIS_HASH, []
    for seq in range(1, 4):
        event = AuditEvent(seq=seq, occurred_at=datetime(2026, 1, 1, 0, 0, seq, tzinfo=UTC), actor_name="old")
        event.action, event.prev_hash = "tests.old", previous
        event.hash = compute_hash(event)
        Event.objects.create(
            **{f.attname: getattr(event, f.attname) for f in AuditEvent._meta.fields if f.attname != "id"}
        )
        previous = event.hash
        hashes.append(event.hash)
    Head.objects.create(id=1, seq=3, hash=previous)
    migrate_to_latest()
    assert verify().as_dict() == {"ok": True, "count": 3, "head": previous, "first_bad": None}
    connection.audit_lane = 1
    after = record("tests.new", actor_name="new")
    assert (after.seq, after.prev_hash) == (4, previous)  # the sequence starts after the old events
    second = _in_lane(2)
    assert second.prev_hash == chain.lane_genesis(2)
    assert (
        list(AuditEvent.objects.filter(seq__lte=3).order_by("seq").values_list("hash", flat=True)) == hashes
    )
    assert verify().ok and verify().count == 5


@pytest.mark.django_db(transaction=True)
def test_two_processes_fall_back_to_one_pass_when_events_are_in_several_lanes(monkeypatch):
    from audit import services

    started = []
    monkeypatch.setattr(services, "_walk_in_two", lambda *args: started.append(args) or True)
    events = _two_lanes()
    _raw("UPDATE audit_auditevent SET reason = 'forged' WHERE seq = %s", [events[5].seq])
    result = services.verify(workers=2, parallel_from=2)
    assert started == []  # lane 2 has events: one pass
    assert (result.ok, result.first_bad) == (False, events[5].seq)
    assert result == services.verify(workers=1)


@pytest.mark.django_db(transaction=True)
def test_when_every_lane_is_held_a_writer_waits_for_one(settings):
    """One lane (the old behaviour): a second writer waits for the first's commit, then links after it."""
    settings.AUDIT_LANES = 1
    record("tests.lane.first", actor_name="first")  # the lane exists, committed
    held, release, errors, waiter_pid = threading.Event(), threading.Event(), [], []

    def holder() -> None:
        try:
            with transaction.atomic():
                record("tests.lane.held", actor_name="holder")
                held.set()
                assert release.wait(timeout=30)
        except Exception as exc:  # asserted below
            errors.append(exc)
            held.set()
        finally:
            connections.close_all()

    def waiter() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                waiter_pid.append(cursor.fetchone()[0])
            record("tests.lane.waited", actor_name="waiter")
        except Exception as exc:  # asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(timeout=30)
    second = threading.Thread(target=waiter)
    second.start()
    try:
        with connection.cursor() as cursor:  # the waiter is blocked on the lane's row lock
            for _ in range(3000):
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted",
                    [waiter_pid[0] if waiter_pid else 0],
                )
                if cursor.fetchone()[0]:
                    break
                cursor.execute("SELECT pg_sleep(0.01)")
            else:
                pytest.fail("the second writer never waited for the lane")
    finally:
        release.set()
        first.join(timeout=30)
        second.join(timeout=30)
    assert errors == []
    held_event = AuditEvent.objects.get(action="tests.lane.held")
    waited = AuditEvent.objects.get(action="tests.lane.waited")
    assert (waited.prev_hash, waited.seq > held_event.seq) == (held_event.hash, True)
    assert verify().ok and verify().count == 3


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_made_the_lanes_takes_one_in_one_statement_and_notices_missing_rows(settings):
    """Making the lane rows (_ensure_sql) is one statement per connection, not one per event; a
    connection that made them still notices rows deleted since, makes them again, and the sequence
    has no gap."""
    from django.test.utils import CaptureQueriesContext

    settings.AUDIT_LANES = 8
    first = record("tests.lanes.first", actor_name="a")
    with CaptureQueriesContext(connection) as seen:
        second = record("tests.lanes.second", actor_name="a")
    statements = [q["sql"] for q in seen.captured_queries]
    assert not any("WITH made AS" in sql for sql in statements), statements
    assert second.seq == first.seq + 1
    _raw("DELETE FROM audit_chainhead WHERE id > 1")
    with CaptureQueriesContext(connection) as seen:
        third = record("tests.lanes.third", actor_name="a")
    assert any("WITH made AS" in q["sql"] for q in seen.captured_queries)
    assert ChainHead.objects.count() == 8
    assert third.seq == second.seq + 1  # the first try took no number
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_an_event_is_appended_and_its_lane_head_moved_in_one_statement(settings):
    """After the lane is taken, the INSERT and the head's UPDATE go as one statement; the event comes
    back with the id of its row, the row holds what was hashed, the head points at it, and a
    following event links to it."""
    from django.test.utils import CaptureQueriesContext

    settings.AUDIT_LANES = 8
    record("tests.lanes.first", actor_name="a")
    with CaptureQueriesContext(connection) as seen:
        event = record("tests.lanes.second", actor_name="a", after={"n": 2}, reason="why")
    writes = [q["sql"] for q in seen.captured_queries if "INSERT INTO" in q["sql"] or "SET seq" in q["sql"]]
    assert len(writes) == 1 and writes[0].startswith("WITH head AS (UPDATE"), writes
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.action, stored.after, stored.reason) == (
        event.seq,
        "tests.lanes.second",
        {"n": 2},
        "why",
    )
    assert stored.hash == compute_hash(stored) == event.hash
    lane = connection.audit_lane
    assert ChainHead.objects.get(id=lane).hash == event.hash
    following = record("tests.lanes.third", actor_name="a")
    assert connection.audit_lane == lane and following.prev_hash == event.hash
    assert verify().ok
