"""Recording and verifying audit events. `record()` is the one way to write the trail."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models.sql import InsertQuery
from django.utils import translation

from audit import chain
from audit.chain import HASHED_FIELDS
from audit.models import AuditEvent, ChainHead
from core import clock
from core.context import current_context

logger = logging.getLogger("audit.verify")


def _normalise(value: Any) -> Any:
    """JSON round-trip so the hash is computed over what the database gives back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(event: AuditEvent) -> str:
    content = {name: getattr(event, name) for name in HASHED_FIELDS}
    content["occurred_at"] = _timestamp(event.occurred_at)
    canonical = json.dumps(content, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _actor(actor) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, ""
    return actor.pk, actor.get_username()


def _describe(obj) -> tuple[str, str, str, str]:
    if obj is None:
        return "", "", "", ""
    object_type = f"{obj._meta.app_label}.{obj._meta.model_name}"
    site = getattr(obj, "audit_site_code", None)
    return object_type, str(getattr(obj, "audit_object_id", obj.pk)), str(obj)[:200], site or ""


def _in_portal_language(func):
    """The trail is written in the portal's language (English) whatever language the request speaks:
    object names and lazily translated labels in payloads are stored in neutral wording. (A new
    override per call: one shared override object is not safe across threads.)"""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return func(*args, **kwargs)

    return wrapper


def lanes() -> int:
    """How many lanes writers spread over (settings.AUDIT_LANES; always 1 on SQLite)."""
    if connection.vendor != "postgresql":
        return 1
    return max(1, min(int(getattr(settings, "AUDIT_LANES", 8)), chain.MAX_LANES))


_ENSURE: dict[int, str] = {}


def _ensure_sql(count: int) -> str:
    """One statement: create the missing lane rows 1..count (only those missing: an INSERT that met
    a lane row another writer is updating would wait for its transaction); when it created any, bring
    the sequence up to max(seq) + 1 (or back to it when it created them all: a flushed or rolled-back
    test database), where this role may (setval needs UPDATE on the sequence; the app role has not).
    Its row: (lane rows created, setval's result or NULL)."""
    if count not in _ENSURE:
        values = ", ".join(["(%s::int, %s::varchar)"] * count)
        _ENSURE[count] = (
            "WITH made AS (INSERT INTO audit_chainhead (id, seq, hash) SELECT v.id, 0, v.hash FROM (VALUES "  # noqa: S608 (placeholders)
            + values
            + ") AS v (id, hash) WHERE NOT EXISTS (SELECT 1 FROM audit_chainhead AS h WHERE h.id = v.id)"
            " ON CONFLICT (id) DO NOTHING RETURNING id), n AS (SELECT count(*) AS made FROM made) "
            "SELECT n.made, CASE WHEN n.made > 0 THEN ("
            " SELECT CASE WHEN has_sequence_privilege('audit_event_seq', 'UPDATE')"
            "  AND (n.made = %s OR needed > next) THEN setval('audit_event_seq', needed, false) END"
            " FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS needed,"
            "  (SELECT last_value + is_called::int FROM audit_event_seq) AS next FROM audit_auditevent) AS s"
            ") END FROM n"
        )
    return _ENSURE[count]


_TAKE = (
    "WITH lane AS MATERIALIZED (SELECT id, seq, hash FROM audit_chainhead WHERE id <= %s"
    " ORDER BY (id = %s) DESC, id FOR UPDATE SKIP LOCKED LIMIT 1)"
    " SELECT id, seq, hash, nextval('audit_event_seq') FROM lane"
)
# The same when this connection made every lane row before: the seq only if all K rows still exist
# (a cheap count on the primary key; CASE leaves the sequence alone otherwise), so such a connection
# skips _ensure_sql and still notices rows gone since (a migration, a flushed test database).
_TAKE_IF_ALL = _TAKE.replace(
    "nextval('audit_event_seq')",
    "CASE WHEN (SELECT count(*) FROM audit_chainhead WHERE id <= %s) = %s THEN nextval('audit_event_seq') END",
)
_WAIT = (
    "WITH lane AS MATERIALIZED (SELECT id, seq, hash FROM audit_chainhead WHERE id = %s FOR UPDATE)"
    " SELECT id, seq, hash, nextval('audit_event_seq') FROM lane"
)


def _take_lane() -> tuple[int, int, str, int]:
    """Lock a lane for the rest of the caller's transaction (PostgreSQL): (lane, its count, its tip,
    the event's global seq). The lane this connection used last comes first (a transaction that
    already holds one gets it back: its own lock is not skipped); else the lowest free one; if all
    are held by others, wait for the preferred one. The global seq is taken while the lane is locked,
    so within a lane seq grows in link order."""
    count = lanes()
    preferred = getattr(connection, "audit_lane", 1)
    if preferred > count:
        preferred = 1
    with connection.cursor() as cursor:
        row = None
        if getattr(connection, "audit_lanes_ready", None) == count:  # this connection made them all
            cursor.execute(_TAKE_IF_ALL, [count, preferred, count, count])
            row = cursor.fetchone()
            if row is not None and row[3] is None:  # some were removed since
                preferred, row = row[0], None  # (this transaction keeps that lane: it is taken again)
        if row is None:  # lane rows may be missing (a new, flushed or rolled-back trail): make them
            values = [value for lane in range(1, count + 1) for value in (lane, chain.lane_genesis(lane))]
            cursor.execute(_ensure_sql(count), [*values, count])
            if cursor.fetchone()[0] == count:  # a new trail (or a flushed one): it starts in lane 1
                preferred = 1
            connection.audit_lanes_ready = count
            cursor.execute(_TAKE, [count, preferred])
            row = cursor.fetchone()
        for lane in dict.fromkeys((preferred, 1)):  # all held by others: wait for this one's lane
            if row is not None:
                break
            cursor.execute(_WAIT, [lane])
            row = cursor.fetchone()
    if row is None:  # (lane rows deleted under a running writer)
        raise RuntimeError("no audit lane row to write to")
    connection.audit_lane = row[0]
    return row


@_in_portal_language
def record(
    action: str,
    obj=None,
    *,
    actor=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    actor_name: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    site_code: str | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (or a new one).

    Called in the same transaction as the change it describes, so the event and the change
    commit or roll back together.
    """
    ctx = current_context()
    if actor is None and ctx is not None and ctx.request is not None:
        actor = getattr(ctx.request, "user", None)
    actor_id, name = _actor(actor)
    described_type, described_id, described_repr, described_site = _describe(obj)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            lane, lane_seq, prev_hash, seq = _take_lane()
        else:  # SQLite serialises writers anyway: one lane, seq = head.seq + 1 (as before lanes)
            head = ChainHead.objects.select_for_update().filter(id=1).first()
            if head is None:  # a new (or flushed) trail
                ChainHead.objects.bulk_create([ChainHead(id=1)], ignore_conflicts=True)
                head = ChainHead.objects.select_for_update().get(id=1)
            lane, lane_seq, prev_hash, seq = 1, head.seq, head.hash, head.seq + 1
        event = AuditEvent(
            seq=seq,
            occurred_at=clock.now(),
            actor_id=actor_id,
            actor_name=(actor_name if actor_name is not None else name)[:150],
            action=action,
            object_type=object_type if object_type is not None else described_type,
            object_id=object_id if object_id is not None else described_id,
            object_repr=described_repr,
            site_code=site_code if site_code is not None else described_site,
            before=_normalise(before) if before is not None else None,
            after=_normalise(after) if after is not None else None,
            request_id=ctx.request_id if ctx else "",
            ip_address=ctx.ip_address if ctx else None,
            reason=reason,
            prev_hash=prev_hash,
        )
        event.hash = compute_hash(event)
        _append(event, lane, lane_seq)
    return event


def _append(event: AuditEvent, lane: int, lane_seq: int) -> None:
    """Insert the event and move its lane's head to it, in the lane's locked transaction. On
    PostgreSQL one statement: the head's UPDATE is a data-modifying CTE of the INSERT, which the
    database runs once and to completion whether or not the INSERT reads it (one round trip and one
    ORM save fewer per event); elsewhere the two statements."""
    if connection.vendor != "postgresql":
        event.save(force_insert=True)
        ChainHead.objects.filter(id=lane).update(seq=lane_seq + 1, hash=event.hash)
        return
    query = InsertQuery(AuditEvent)
    query.insert_values([f for f in AuditEvent._meta.local_concrete_fields if not f.primary_key], [event])
    [(insert, params)] = query.get_compiler(connection=connection).as_sql()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH head AS (UPDATE {quote(ChainHead._meta.db_table)} SET seq = %s, hash = %s WHERE id = %s) "  # noqa: S608 (names from the models; values are parameters)
            f"{insert} RETURNING {quote(AuditEvent._meta.pk.column)}",
            [lane_seq + 1, event.hash, lane, *params],
        )
        event.pk = cursor.fetchone()[0]
    event._state.adding, event._state.db = False, connection.alias


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    head: str
    first_bad: int | None
    problem: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "count": self.count, "head": self.head, "first_bad": self.first_bad}


def _problem(seq: int, kind: str, published_at: str = "") -> str:
    if kind == chain.PUBLISHED:
        return f"#{seq} differs from the head published {published_at}: the trail was rewritten"
    if kind == chain.GAP:
        return f"sequence gap before #{seq}"
    if kind == chain.LINK:
        return f"#{seq} does not link to its predecessor"
    return f"#{seq} content does not match its hash"


_SELECT = "SELECT " + ", ".join(chain.COLUMNS) + " FROM audit_auditevent"  # noqa: S608 (constant names)


def prefetched(fetch, depth: int = 2):
    """Yield fetch()'s batches until an empty one, fetching the next batch in a thread while the
    caller works on this one: PostgreSQL reads and sends rows (psycopg waits without the GIL) while
    Python hashes, on the second core."""
    batches: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                rows = fetch()
                batches.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            batches.put(exc)

    worker = threading.Thread(target=run, name="audit-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            rows = batches.get()
            if isinstance(rows, BaseException):
                raise rows
            if not rows:
                return
            yield rows
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked put() finish, then the thread ends
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.05)
        worker.join()


def _walk_postgres(
    walker, chunk_size: int, upto: int | None = None, after: int | None = None, heads: list | None = None
) -> None:
    """Every row in seq order through one server-side cursor, as text tuples: no model instances, no
    datetime or JSON objects (the canonical form is written from PostgreSQL's text); the next batch
    is fetched in a thread while this one is hashed. `heads` (a list) receives the chain-head rows
    (id, seq, hash) read in the same snapshot as the events (REPEATABLE READ when this opens the
    transaction: writers keep committing in other lanes while the trail is read)."""
    from psycopg.types.string import TextLoader

    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if heads is not None:
            cursor.execute("SELECT id, seq, hash FROM audit_chainhead ORDER BY id")
            heads.extend(cursor.fetchall())
        cursor.execute(
            "SELECT current_setting('DateStyle'), current_setting('TimeZone'), "
            "set_config('DateStyle', 'ISO', true), set_config('TimeZone', 'UTC', true)"
        )
        date_style, time_zone, _, _ = cursor.fetchone()
        with connection.connection.cursor(name="audit_verify") as server:
            for name in ("timestamptz", "jsonb", "inet"):
                server.adapters.register_loader(name, TextLoader)
            server.itersize = chunk_size
            if upto is not None:
                server.execute(_SELECT + " WHERE seq <= %s ORDER BY seq", [upto])
            elif after is not None:
                server.execute(_SELECT + " WHERE seq > %s ORDER BY seq", [after])
            else:
                server.execute(_SELECT + " ORDER BY seq")
            for rows in prefetched(lambda: server.fetchmany(chunk_size)):
                if not walker.feed(rows):
                    break
        cursor.execute(
            "SELECT set_config('DateStyle', %s, true), set_config('TimeZone', %s, true)",
            [date_style, time_zone],
        )


def _walk_values(walker: chain.Chain, chunk_size: int) -> None:
    """Keyset batches of plain value tuples (SQLite, or any backend): no model instances."""
    rows_from = AuditEvent.objects.order_by("seq").values_list(*chain.COLUMNS)
    last = None
    while True:
        rows = list((rows_from if last is None else rows_from.filter(seq__gt=last))[:chunk_size])
        if not rows or not walker.feed(rows):
            return
        last = rows[-1][0]


def _conninfo() -> dict:
    """psycopg.connect() arguments for a second connection to the same database (a child process)."""
    params = connection.settings_dict
    info = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
    info.update(
        {key: value for key, value in params.get("OPTIONS", {}).items() if isinstance(value, (str, int))}
    )
    return {key: value for key, value in info.items() if value is not None}


def _walk_in_two(walker: chain.Lanes, chunk_size: int, middle: int, published: dict) -> bool:
    """The upper half (seq > middle) checked by a second process while this one checks the lower
    half, for a trail whose events are all in lane 1 (the caller checks the heads; a lower half that
    used another lane and the upper half is walked here). The halves are joined only when both are
    clean and the upper one's first link is the lower one's lane-1 tip. Anything else (a problem in
    the upper half, a bad boundary, the child failing) and this process walks the upper half itself,
    from where the lower one ended: the result is exactly the one-pass result. False when no child
    could be started (a daemonic Celery worker)."""
    import multiprocessing

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE seq <= %s", [middle])
        (lower,) = cursor.fetchone()
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    hashes = {
        key: {"hash": entry["hash"]} for key, entry in published.items() if key[0] == 1 and key[1] > lower
    }
    try:
        child = context.Process(
            target=chain.verify_range_into,
            args=(sender, _conninfo(), middle, hashes, lower, chunk_size),
            name="audit-verify-upper",
            daemon=True,
        )
        child.start()
    except Exception:  # e.g. "daemonic processes are not allowed to have children"
        logger.info("audit verify: no second process, one pass", exc_info=True)
        return False
    sender.close()
    try:
        _walk_postgres(walker, chunk_size, upto=middle)
        if walker.bad is not None:
            return True
        ends = walker.ends()
        if walker.count != lower or set(ends) - {1}:  # a row missing, or another lane: one pass on
            _walk_postgres(walker, chunk_size, after=middle)
            return True
        try:
            status, outcome = receiver.recv()
        except EOFError:
            status, outcome = "error", "the child ended without a result"
        if status == "ok":
            bad, count, first_prev, last_hash, last_seq = outcome
            if bad is None and (count == 0 or first_prev == ends.get(1, chain.GENESIS_HASH)):
                if count:
                    walker.tips = {last_hash: 1}
                    walker.counts[1] += count
                    walker.count += count
                    walker.last_hash, walker.last_seq = last_hash, last_seq
                return True
        else:
            logger.warning("audit verify: the second process failed (%s); checking its half here", outcome)
        _walk_postgres(walker, chunk_size, after=middle)
        return True
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _lane_problem(walker: chain.Lanes, heads: list, published: dict) -> tuple[int, str] | None:
    """After a clean walk of a trail in lanes: (first_bad, problem) for a head published beyond the
    end of its lane, or a chain-head row that does not match its lane (count and tip). A trail whose
    events are all in lane 1 is reported in the words of the single chain."""
    counts, ends = walker.counts, walker.ends()
    single = set(ends) <= {1} and all(lane == 1 for lane, _ in published)
    beyond = [(lane, n) for lane, n in published if n > counts[lane]]
    if beyond:
        lane, n = max(beyond, key=lambda key: (key[1], -key[0]))
        if single:
            problem = f"a head published for #{n} but the table ends at #{walker.count}: events were removed"
        else:
            problem = (
                f"a head published for event {n} of lane {lane} but the lane ends at event {counts[lane]}: "
                "events were removed"
            )
        return walker.last_seq + 1, problem
    rows = {lane: (seq, tip) for lane, seq, tip in heads}
    for lane in sorted(set(rows) | set(ends)):
        count, tip = counts[lane], ends.get(lane, chain.lane_genesis(lane))
        if lane not in rows:
            if lane == 1:  # (as before lanes: a trail loaded without its head row)
                continue
            return walker.last_seq + 1, f"lane {lane} has {count} events but no chain head"
        head_seq, head_hash = rows[lane]
        if head_seq == count and head_hash == tip:
            continue
        if head_seq > count:
            first_bad = walker.last_seq + 1
        elif head_seq:
            first_bad = _lane_seq(lane, head_seq)
        else:
            first_bad = 0
        if single:
            return first_bad, f"chain head says #{head_seq}, table ends at #{walker.count}"
        return first_bad, f"lane {lane}'s chain head says #{head_seq}, the lane ends at #{count}"
    return None


def _lane_seq(lane: int, n: int) -> int:
    """The seq of the n-th event of a lane (to name it in a report: a second, light pass)."""
    rows = (
        AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash").iterator(chunk_size=5000)
    )
    return chain.lane_position(rows, lane, n) or 0


def entry_lanes(entry: dict) -> dict[int, dict]:
    """{lane: {"seq", "hash"}} of a published entry: its "seq" and "hash" are lane 1's (an entry from
    before lanes has only those), "lanes" the other lanes' ({"2": {"seq", "hash"}, ...})."""
    found = {1: {"seq": entry["seq"], "hash": entry["hash"]}}
    for key, head in (entry.get("lanes") or {}).items():
        if (
            str(key).isdigit()
            and isinstance(head, dict)
            and isinstance(head.get("seq"), int)
            and head.get("hash")
        ):
            found[int(key)] = {"seq": head["seq"], "hash": head["hash"]}
    return found


def verify(chunk_size: int = 5000, workers: int | None = None, parallel_from: int = 500_000) -> Verification:
    """Recompute the chain in order; report the first event whose link or content is wrong.

    On PostgreSQL the trail is walked as lanes (docs/audit-chain.md); a trail of at least
    `parallel_from` events, all in lane 1, is checked by `workers` processes (default
    settings.AUDIT_VERIFY_WORKERS, else 1: opt-in; at most the CPUs) in two halves, unless the caller
    is inside a transaction (a second connection would not see its rows)."""
    from audit.trail import published_heads

    if connection.vendor != "postgresql":
        return _verify_single(chunk_size)
    published: dict = {}
    for entry in published_heads():
        for lane, head in entry_lanes(entry).items():
            published[(lane, head["seq"])] = {**head, "published_at": entry.get("published_at", "")}
    walker = chain.Lanes(published=published)
    if workers is None:
        workers = getattr(settings, "AUDIT_VERIFY_WORKERS", 1)
    workers = min(workers, os.cpu_count() or 1)
    heads: list = []
    done = False
    if workers > 1 and not connection.in_atomic_block:
        rows = list(ChainHead.objects.values_list("id", "seq"))
        total = sum(seq for _, seq in rows)
        if total >= max(parallel_from, 2) and all(seq == 0 for lane, seq in rows if lane != 1):
            top = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
            done = _walk_in_two(walker, chunk_size, top // 2, published)
        if done:
            heads = list(ChainHead.objects.order_by("id").values_list("id", "seq", "hash"))
    if not done:
        _walk_postgres(walker, chunk_size, heads=heads)
    count, last_hash = walker.count, walker.last_hash
    if walker.bad is not None:
        seq, kind = walker.bad
        published_at = walker.bad_entry["published_at"] if kind == chain.PUBLISHED else ""
        return Verification(False, count, last_hash, seq, _problem(seq, kind, published_at))
    found = _lane_problem(walker, heads, published)
    if found is not None:
        return Verification(False, count, last_hash, found[0], found[1])
    return Verification(True, count, last_hash, None)


def _verify_single(chunk_size: int) -> Verification:
    """SQLite (one lane, no gaps: seq = head.seq + 1): the chain as before lanes."""
    from audit.trail import published_heads

    published = {entry["seq"]: entry for entry in published_heads()}
    walker = chain.Chain(published=published)
    _walk_values(walker, chunk_size)
    count, last_hash = walker.count, walker.last_hash
    if walker.bad is not None:
        seq, kind = walker.bad
        published_at = published[seq]["published_at"] if kind == chain.PUBLISHED else ""
        return Verification(False, count, last_hash, seq, _problem(seq, kind, published_at))
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
