"""The hash chain's canonical form, built straight from database rows (no model instances).

`audit.services.compute_hash(event)` defines the canonical form: the HASHED_FIELDS as one JSON object,
keys sorted, separators "," and ":", ASCII only (non-ASCII escaped as \\uXXXX), the timestamp as UTC
ISO 8601 with microseconds, before/after with their keys sorted. This module writes those same bytes
from a row tuple with a precomputed template, so verification hashes at close to the speed of reading
(tests/audit/test_chain_canonical.py proves the equality on tricky values). No Django import: a
verification worker process (audit.services.verify) uses it with a bare psycopg connection.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring_ascii
from json.scanner import c_make_scanner

GENESIS_HASH = "0" * 64
MAX_LANES = 64


def lane_genesis(lane: int) -> str:
    """The hash a lane's first event links to: lane 1 (the chain written before lanes) starts at
    GENESIS_HASH, lane k >= 2 at "0"*60 + k in four digits (distinct: prev_hash is unique)."""
    return GENESIS_HASH if lane == 1 else "0" * 60 + f"{lane:04d}"


def geneses(lanes: int = MAX_LANES) -> dict[str, int]:
    """{genesis hash: lane} for lanes 1..lanes."""
    return {lane_genesis(lane): lane for lane in range(1, lanes + 1)}


# The fields an event's hash covers: the one list (compute_hash and the verifier use it).
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "site_code",
    "before",
    "after",
    "request_id",
    "ip_address",
    "reason",
    "prev_hash",
)
# The columns a verifier reads, in this order (hash last).
COLUMNS = (*HASHED_FIELDS, "hash")
# The canonical JSON object, keys in sorted order (json.dumps(sort_keys=True)).
_TEMPLATE = (
    '{"action":%s,"actor_id":%s,"actor_name":%s,"after":%s,"before":%s,"ip_address":%s,'
    '"object_id":%s,"object_repr":%s,"object_type":%s,"occurred_at":%s,"prev_hash":%s,"reason":%s,'
    '"request_id":%s,"seq":%s,"site_code":%s}'
)
_esc = encode_basestring_ascii


def _refuse(value):
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# json.dumps(value, sort_keys=True, separators=(",", ":")) without building an encoder per call.
# (The C encoder; floats use float.__repr__ as json.dumps does.)
_encode_c = (
    c_make_encoder(None, _refuse, encode_basestring_ascii, None, ":", ",", True, False, True)
    if c_make_encoder is not None
    else None
)
_scan = c_make_scanner(json.JSONDecoder()) if c_make_scanner is not None else None
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def canonical_json(value) -> str:
    """A before/after value (loaded JSON: dict, list, str, number, bool, None) in canonical form."""
    if value is None:
        return "null"
    if _encode_c is not None and isinstance(value, (dict, list)):
        return "".join(_encode_c(value, 0))
    return _dumps(value)


_memo: dict[str, str] = {}
_MEMO_MAX = 4096


def canonical_json_text(text: str | None) -> str:
    """The database's JSON text (PostgreSQL jsonb: its own key order and spacing) in canonical form:
    loaded as Django loads it (json.loads), dumped sorted. Payloads repeat ({"state": "approved"}):
    a small bounded memo skips the round trip for those."""
    if text is None:
        return "null"
    done = _memo.get(text)
    if done is not None:
        return done
    if _scan is not None and text[:1] in "{[":
        value, end = _scan(text, 0)
        if text[end:].strip():
            value = json.loads(text)  # raises as Django's JSONField would
    else:
        value = json.loads(text)
    done = canonical_json(value)
    if len(_memo) >= _MEMO_MAX:
        _memo.clear()
    _memo[text] = done
    return done


def iso_timestamp(value: datetime) -> str:
    """audit.services._timestamp, JSON-quoted."""
    return '"' + value.astimezone(UTC).isoformat(timespec="microseconds") + '"'


def iso_timestamp_text(text: str) -> str:
    """PostgreSQL's text of a timestamptz (DateStyle ISO, TimeZone UTC: '2026-01-02 03:04:05.6789+00',
    trailing zeros of the fraction dropped) as iso_timestamp would write it, JSON-quoted."""
    if text[-3:] == "+00" and text[10:11] == " ":
        size = len(text)
        if size == 29:
            return '"' + text[:10] + "T" + text[11:26] + '+00:00"'
        if size == 22:
            return '"' + text[:10] + "T" + text[11:19] + '.000000+00:00"'
        if 23 < size < 29 and text[19] == ".":
            return '"' + text[:10] + "T" + text[11:-3].ljust(15, "0") + '+00:00"'
    return iso_timestamp(datetime.fromisoformat(text))


def _text(value) -> str:
    return "null" if value is None else _esc(value)


def canonical(row, occurred: str, before: str, after: str) -> str:
    """The canonical JSON of one row (COLUMNS order), given the timestamp and before/after already in
    canonical form."""
    actor_id = row[2]
    ip_address = row[12]
    return _TEMPLATE % (
        _esc(row[4]),
        "null" if actor_id is None else int(actor_id),
        _text(row[3]),
        after,
        before,
        "null" if ip_address is None else _esc(ip_address),
        _text(row[6]),
        _text(row[7]),
        _text(row[5]),
        occurred,
        _text(row[14]),
        _text(row[13]),
        _text(row[11]),
        int(row[0]),
        _text(row[8]),
    )


def row_hash_text(row) -> str:
    """The hash of a row read as PostgreSQL text (timestamptz and jsonb as text)."""
    content = canonical(
        row, iso_timestamp_text(row[1]), canonical_json_text(row[9]), canonical_json_text(row[10])
    )
    return hashlib.sha256(content.encode("ascii")).hexdigest()


def row_hash_values(row) -> str:
    """The hash of a row read as Python values (aware datetime, loaded JSON): SQLite, values_list()."""
    content = canonical(row, iso_timestamp(row[1]), canonical_json(row[9]), canonical_json(row[10]))
    return hashlib.sha256(content.encode("ascii")).hexdigest()


# --- The checker -------------------------------------------------------------------------------------
PUBLISHED, GAP, LINK, CONTENT = "published", "gap", "link", "content"


class Chain:
    """The single chain (SQLite, one lane, seq = head.seq + 1): walks rows read as Python values in seq
    order and stops at the first bad one, as audit.services.verify() reports it: a published head that
    differs (only where the sequence is intact), a sequence gap, a broken link, content that does not
    match its hash. (PostgreSQL's text rows go through Lanes and its written-out hot loop.)"""

    def __init__(self, published=None):
        self.expected_seq = 1
        self.count = 0
        self.last_hash = GENESIS_HASH
        self.published = published or {}
        self.bad: tuple[int, str] | None = None  # (seq, kind)

    def feed(self, rows) -> bool:
        """Check a batch; False once a bad row is found (self.bad, self.count include it)."""
        for row in rows:
            if self.bad is not None:
                break
            self.count += 1
            seq = row[0]
            head_then = self.published.get(seq)
            if head_then is not None and head_then["hash"] != row[15] and seq == self.expected_seq:
                self.bad = (seq, PUBLISHED)
            elif seq != self.expected_seq:
                self.bad = (seq, GAP)
            elif row[14] != self.last_hash:
                self.bad = (seq, LINK)
            elif row_hash_values(row) != row[15]:
                self.bad = (seq, CONTENT)
            else:
                self.last_hash = row[15]
                self.expected_seq += 1
        return self.bad is None


class Lanes:
    """Walks rows in seq order as Chain does, for a trail written in lanes (PostgreSQL): each event
    must link to the tip of a lane already open or to the genesis of a lane not yet started; the
    global seq may have gaps (rolled-back transactions). Stops at the first bad row: a broken link, a
    published head of its lane that differs, content that does not match its hash. `published` is
    {(lane, n): entry}: the n-th event of that lane as published. `trust_first` starts mid-trail
    trusting the first row's link as lane 1's tip, with no lane genesis allowed (a worker's range of a
    trail with one lane; the caller checks the boundary); `start` is lane 1's count before it."""

    def __init__(self, published=None, trust_first: bool = False, start: int = 0):
        self.tips: dict[str, int] = {}  # the open tips, {hash: lane}
        self.starts: dict[str, int] = {} if trust_first else geneses()  # lanes not yet started
        self.counts = [0] * (MAX_LANES + 1)
        self.counts[1] = start
        self.trust_first = trust_first
        self.first_prev: str | None = None
        self.count = 0
        self.last_hash = GENESIS_HASH  # the last good row's hash
        self.last_seq = 0
        self.published = published or {}
        self.bad: tuple[int, str] | None = None  # (seq, kind)
        self.bad_entry: dict | None = None  # the published head that differs

    def ends(self) -> dict[int, str]:
        """{lane: tip} of every lane started."""
        return {lane: tip for tip, lane in self.tips.items()}

    def feed(self, rows, text: bool = True) -> bool:
        """Check a batch; False once a bad row is found (self.bad, self.count include it)."""
        if self.bad is not None:
            return False
        if not rows:
            return True
        if self.trust_first and self.first_prev is None:
            self.first_prev = rows[0][14]
            self.tips[self.first_prev] = 1
        tips, starts, counts, published = self.tips, self.starts, self.counts, self.published
        tips_pop, starts_pop = tips.pop, starts.pop
        count, last_hash, last_seq = self.count, self.last_hash, self.last_seq
        # The hot loop: Chain.feed's, with the link looked up among the open tips.
        esc, template, sha256, memo_get = _esc, _TEMPLATE, hashlib.sha256, _memo.get
        for row in rows:
            count += 1
            seq = row[0]
            lane = tips_pop(row[14], None)
            if lane is None:
                lane = starts_pop(row[14], None)
                if lane is None:
                    self.bad = (seq, LINK)
                    break
            n = counts[lane] + 1
            counts[lane] = n
            if published:
                head_then = published.get((lane, n))
                if head_then is not None and head_then["hash"] != row[15]:
                    self.bad, self.bad_entry = (seq, PUBLISHED), head_then
                    break
            if text:
                occurred = row[1]
                if len(occurred) == 29 and occurred[26:] == "+00" and occurred[10] == " ":
                    occurred = '"' + occurred[:10] + "T" + occurred[11:26] + '+00:00"'
                else:
                    occurred = iso_timestamp_text(occurred)
                before, after = row[9], row[10]
                before = "null" if before is None else (memo_get(before) or canonical_json_text(before))
                after = "null" if after is None else (memo_get(after) or canonical_json_text(after))
            else:
                occurred = iso_timestamp(row[1])
                before, after = canonical_json(row[9]), canonical_json(row[10])
            actor_id, ip_address = row[2], row[12]
            try:
                content = template % (
                    esc(row[4]),
                    "null" if actor_id is None else int(actor_id),
                    esc(row[3]),
                    after,
                    before,
                    "null" if ip_address is None else esc(ip_address),
                    esc(row[6]),
                    esc(row[7]),
                    esc(row[5]),
                    occurred,
                    esc(row[14]),
                    esc(row[13]),
                    esc(row[11]),
                    int(seq),
                    esc(row[8]),
                )
            except TypeError:
                content = canonical(row, occurred, before, after)
            last = row[15]
            if sha256(content.encode("ascii")).hexdigest() != last:
                self.bad = (seq, CONTENT)
                break
            tips[last] = lane
            last_hash, last_seq = last, seq
        self.count, self.last_hash, self.last_seq = count, last_hash, last_seq
        return self.bad is None


def lane_position(rows, lane: int, n: int) -> int | None:
    """The seq of the n-th event of `lane`, from (seq, prev_hash, hash) rows in seq order (the links
    replayed as Lanes does; a report's detail, not on the verifier's hot path)."""
    tips: dict[str, int] = {}
    starts = geneses()
    counts = [0] * (MAX_LANES + 1)
    for seq, prev, own in rows:
        found = tips.pop(prev, None) or starts.pop(prev, None)
        if found is None:
            continue
        counts[found] += 1
        if found == lane and counts[found] == n:
            return seq
        tips[own] = found
    return None


# --- A second process for the upper half of the chain (audit.services.verify) -------------------------
def verify_range(conninfo: dict, after: int, published: dict, start: int, chunk_size: int) -> tuple:
    """Check the rows after seq `after`, in a process of its own (no Django: a bare psycopg connection
    with its own server-side cursor), as one lane (lane 1) whose count so far is `start`. Starts
    trusting the first row's link; the caller checks that it links to the lower half's lane-1 tip.
    Returns (bad, count, first_prev, last_hash, last_seq)."""
    import psycopg
    from psycopg.types.string import TextLoader

    walker = Lanes(published=published, trust_first=True, start=start)
    select = "SELECT " + ", ".join(COLUMNS) + " FROM audit_auditevent WHERE seq > %s ORDER BY seq"  # noqa: S608
    with psycopg.connect(**conninfo) as conn:
        for name in ("timestamptz", "jsonb", "inet"):
            conn.adapters.register_loader(name, TextLoader)
        conn.execute("SET DateStyle = 'ISO'")
        conn.execute("SET TimeZone = 'UTC'")
        with conn.transaction(), conn.cursor(name="audit_verify_range") as cursor:
            cursor.itersize = chunk_size
            cursor.execute(select, [after])
            while rows := cursor.fetchmany(chunk_size):
                if not walker.feed(rows):
                    break
    return walker.bad, walker.count, walker.first_prev, walker.last_hash, walker.last_seq


def verify_range_into(pipe, *args) -> None:
    """verify_range() in a child process, its result (or its error, as text) sent through the pipe."""
    try:
        pipe.send(("ok", verify_range(*args)))
    except Exception as exc:  # reported to the parent, which then checks this half itself
        pipe.send(("error", f"{exc.__class__.__name__}: {exc}"))
    finally:
        pipe.close()
