"""The audit trail an inspector can trust (PRODUCT.md C1): every hashed field and every link of the
chain is checked by the verifier, the chain head published outside the database catches a rewrite,
each event says who did what to which object where, and role grants are configuration changes on
record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test import RequestFactory
from guardian.shortcuts import assign_perm, remove_perm

from audit import trail
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.services import HASHED_FIELDS, compute_hash, record, verify
from core import context
from core.roles import Role

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 10, 7, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _raw(sql: str, params=()) -> None:
    """Change the table behind the application's back, as an intruder with SQL access would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = origin")


def seed(n: int = 4) -> list[AuditEvent]:
    return [
        record(
            "tests.thing.updated",
            actor_name="alice",
            object_type="tests.thing",
            object_id=str(i),
            site_code="PLA",
            before={"n": i},
            after={"n": i + 1},
            reason=f"step {i}",
        )
        for i in range(1, n + 1)
    ]


# --- verify: every hashed field ---------------------------------------------------------------------
TAMPERED = {
    "occurred_at": datetime(2026, 11, 10, 7, 0, 1, tzinfo=UTC),
    "actor_id": 999,
    "actor_name": "mallory",
    "action": "tests.thing.deleted",
    "object_type": "tests.other",
    "object_id": "99",
    "object_repr": "something else",
    "site_code": "PLB",
    "before": json.dumps({"n": 0}),
    "after": json.dumps({"n": 100}),
    "request_id": "forged-request",
    "ip_address": "10.6.6.6",
    "reason": "nothing to see",
}


def test_every_hashed_field_is_checked():
    """C1: the hash covers every field an inspector reads; the list is the product's."""
    assert set(HASHED_FIELDS) == {*TAMPERED, "seq", "prev_hash"}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_a_change_to_any_hashed_field_is_found(field):
    """C1: whichever column an intruder changes, the verifier names the event."""
    seed(4)
    assert verify().ok
    _raw(f"UPDATE audit_auditevent SET {field} = %s WHERE seq = 3", [TAMPERED[field]])  # noqa: S608
    result = verify()
    assert (result.ok, result.first_bad, result.count) == (False, 3, 3)
    assert result.problem == "#3 content does not match its hash"
    assert result.head == AuditEvent.objects.get(seq=2).hash


def test_a_relinked_event_with_a_matching_hash_is_found():
    """C1: the last event re-pointed at a forged predecessor and re-hashed (head row too) is caught by its
    link, not by its content."""
    seed(3)
    last = AuditEvent.objects.get(seq=3)
    last.prev_hash = "f" * 64
    last.hash = compute_hash(last)
    _raw("UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = 3", [last.prev_hash, last.hash])
    _raw("UPDATE audit_chainhead SET hash = %s WHERE id = 1", [last.hash])
    result = verify()
    assert (result.ok, result.first_bad, result.problem) == (False, 3, "#3 does not link to its predecessor")
    assert (result.count, result.head) == (3, AuditEvent.objects.get(seq=2).hash)


def test_the_first_event_links_to_the_genesis_hash():
    """C1: the chain starts at the genesis hash; a forged first link is caught."""
    first = seed(1)[0]
    assert first.prev_hash == GENESIS_HASH
    first.prev_hash = "1" * 64
    first.hash = compute_hash(first)
    _raw("UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = 1", [first.prev_hash, first.hash])
    _raw("UPDATE audit_chainhead SET hash = %s WHERE id = 1", [first.hash])
    assert verify().problem == "#1 does not link to its predecessor"


def test_a_missing_event_is_a_gap():
    """C1: a deleted event is named at the event after it: a gap in the sequence (SQLite: one chain,
    no gaps allowed), a broken link in its lane (PostgreSQL: lanes, where a rolled-back transaction
    leaves a gap in the global sequence)."""
    seed(4)
    _raw("DELETE FROM audit_auditevent WHERE seq = 2")
    result = verify()
    problem = (
        "#3 does not link to its predecessor"
        if connection.vendor == "postgresql"
        else "sequence gap before #3"
    )
    assert (result.ok, result.first_bad, result.problem) == (False, 3, problem)
    assert (result.count, result.head) == (2, AuditEvent.objects.get(seq=1).hash)


def test_an_intact_chain_verifies():
    """C1: the whole chain, its length and its head."""
    events = seed(3)
    result = verify(chunk_size=2)
    assert result.as_dict() == {"ok": True, "count": 3, "head": events[-1].hash, "first_bad": None}
    assert result.problem == ""
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


def test_an_empty_trail_verifies():
    """C1: no events, no head: nothing to distrust."""
    assert verify().as_dict() == {"ok": True, "count": 0, "head": GENESIS_HASH, "first_bad": None}


def test_a_head_ahead_of_the_table_names_the_missing_event():
    """C1: the tail was cut: the head row still says #4."""
    seed(4)
    _raw("DELETE FROM audit_auditevent WHERE seq = 4")
    result = verify()
    assert (result.ok, result.first_bad, result.problem) == (False, 4, "chain head says #4, table ends at #3")


def test_a_head_far_ahead_names_the_first_missing_event():
    """C1: two events cut from the tail: the first missing one is named."""
    seed(4)
    _raw("DELETE FROM audit_auditevent WHERE seq >= 3")
    result = verify()
    assert (result.ok, result.first_bad, result.count) == (False, 3, 2)


def test_a_head_published_for_the_last_event_is_no_alarm():
    """C1: the nightly publication of today's head does not make an intact trail look cut."""
    seed(3)
    trail.publish_head()
    assert verify().ok
    seed(1)
    assert verify().ok


def test_a_head_behind_the_table_names_its_own_event():
    """C1: an event added without moving the head row."""
    seed(4)
    _raw("UPDATE audit_chainhead SET seq = 2 WHERE id = 1")
    result = verify()
    assert (result.ok, result.first_bad, result.problem) == (False, 2, "chain head says #2, table ends at #4")
    ChainHead.objects.filter(id=1).update(seq=4, hash="e" * 64)
    assert (verify().ok, verify().first_bad) == (False, 4)


# --- the published head -------------------------------------------------------------------------------
def test_a_published_head_catches_a_consistent_rewrite():
    """C1: a rewrite that recomputes the whole chain and the head row still differs from the head
    published outside the database."""
    seed(2)
    entry = trail.publish_head()
    assert entry == {"published_at": NOW.isoformat(), "seq": 2, "hash": AuditEvent.objects.get(seq=2).hash}
    seed(1)
    previous = AuditEvent.objects.get(seq=1).hash
    for event in AuditEvent.objects.filter(seq__gte=2).order_by("seq"):
        event.reason, event.prev_hash = "rewritten", previous
        event.hash = compute_hash(event)
        _raw(
            "UPDATE audit_auditevent SET reason = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [event.reason, event.prev_hash, event.hash, event.seq],
        )
        previous = event.hash
    _raw("UPDATE audit_chainhead SET hash = %s WHERE id = 1", [previous])
    result = verify()
    assert (result.ok, result.first_bad, result.count) == (False, 2, 2)
    assert result.problem == f"#2 differs from the head published {NOW.isoformat()}: the trail was rewritten"
    assert result.head == AuditEvent.objects.get(seq=1).hash


def test_a_published_head_beyond_the_table_means_events_were_removed():
    """C1: the table and the head row cut back consistently, but a head was published further on."""
    events = seed(3)
    trail.publish_head()
    _raw("DELETE FROM audit_auditevent WHERE seq = 3")
    _raw("UPDATE audit_chainhead SET seq = 2, hash = %s WHERE id = 1", [events[1].hash])
    result = verify()
    assert (result.ok, result.first_bad, result.count) == (False, 3, 2)
    assert result.problem == "a head published for #3 but the table ends at #2: events were removed"


def test_published_heads_read_only_well_formed_lines(settings):
    """C1: the heads file is append-only text; a damaged line is skipped, not trusted."""
    path = settings.AUDIT_HEADS_FILE
    assert trail.published_heads() == []
    first = trail.publish_head()
    assert first == {"published_at": NOW.isoformat(), "seq": 0, "hash": ""}
    record("tests.thing.created", actor_name="alice")
    second = trail.publish_head()
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("not json\n[1, 2]\n" + json.dumps({"seq": "3", "hash": "x"}) + "\n")
        handle.write(json.dumps({"seq": 4, "hash": ""}) + "\n" + json.dumps({"seq": 5}) + "\n")
    third = trail.publish_head()
    assert trail.published_heads() == [second, third]
    assert path.read_text().splitlines()[1] == (
        f'{{"hash": "{second["hash"]}", "published_at": "{NOW.isoformat()}", "seq": 1}}'
    )


def test_the_head_is_published_to_the_log_too(caplog):
    """C1: the head also goes to the log, a second copy outside the database."""
    record("tests.thing.created", actor_name="alice")
    with caplog.at_level("INFO", logger="audit.heads"):
        entry = trail.publish_head()
    assert [r.getMessage() for r in caplog.records if r.name == "audit.heads"] == [
        f"audit chain head {json.dumps(entry, sort_keys=True)}"
    ]


def test_the_heads_file_and_its_folder_are_created(settings, tmp_path):
    """C1: publishing the head needs no set-up."""
    settings.AUDIT_HEADS_FILE = tmp_path / "new" / "folder" / "heads.jsonl"
    trail.publish_head()
    assert trail.heads_file() == tmp_path / "new" / "folder" / "heads.jsonl"
    assert len(trail.heads_file().read_text().splitlines()) == 1


# --- record: who, what, which object, where ------------------------------------------------------------
def test_an_event_names_actor_object_site_and_change(cast, site_a):
    """C1: who (id and name), what, which object (type, id, text), where, before and after, why."""
    previous = ChainHead.objects.get(id=1)
    event = record(
        "environments.site.changed",
        site_a,
        actor=cast["admin"],
        before={"when": datetime(2026, 1, 1, tzinfo=UTC)},
        after={"name": "Plant A"},
        reason="renamed",
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.occurred_at, stored.actor_id, stored.actor_name) == (
        previous.seq + 1,
        NOW,
        cast["admin"].pk,
        "admin",
    )
    assert (stored.action, stored.object_type, stored.object_id, stored.object_repr) == (
        "environments.site.changed",
        "environments.site",
        str(site_a.pk),
        str(site_a),
    )
    assert stored.before == {"when": "2026-01-01T00:00:00Z"} and stored.after == {"name": "Plant A"}
    assert (stored.reason, stored.request_id, stored.ip_address) == ("renamed", "", None)
    assert (stored.prev_hash, stored.hash) == (previous.hash, compute_hash(stored))
    head = ChainHead.objects.get(id=1)
    assert (head.seq, head.hash) == (previous.seq + 1, stored.hash)


def test_explicit_names_win_over_the_described_object(cast, site_a):
    """C1: a caller may name the object and the actor itself (the portal acting as 'system')."""
    event = record(
        "tests.named",
        site_a,
        actor=cast["admin"],
        actor_name="system",
        object_type="tests.other",
        object_id="42",
        site_code="PLB",
    )
    assert (event.actor_id, event.actor_name, event.object_type, event.object_id, event.site_code) == (
        cast["admin"].pk,
        "system",
        "tests.other",
        "42",
        "PLB",
    )
    bare = record("tests.bare")
    assert (bare.actor_id, bare.actor_name, bare.object_type, bare.object_id, bare.object_repr) == (
        None,
        "",
        "",
        "",
        "",
    )
    assert (bare.site_code, bare.before, bare.after, bare.prev_hash) == ("", None, None, event.hash)


def test_long_names_are_cut_to_their_columns(cast):
    """C1: an event is always written, even for a very long actor name or object text."""
    event = record("tests.long", actor_name="x" * 300)
    assert event.actor_name == "x" * 150
    from releases.models import Release

    release = Release(product="P" * 250, version="1.0.0")
    release.pk = 7
    assert len(record("tests.long", release).object_repr) == 200


def test_an_rfc_is_named_by_its_number_and_its_site(cast, site_a):
    """C1: objects that say how they are audited (an RFC by its number) are named that way."""
    from tests import factories

    rfc = factories.rfc(cast["dev"], site_a)
    created = AuditEvent.objects.get(action="releases.rfc.created")
    assert (created.object_type, created.object_id) == ("releases.rfc", rfc.number)
    assert created.site_code == getattr(rfc, "audit_site_code", "")


def test_the_request_gives_the_actor_the_request_id_and_the_address(cast):
    """C1: inside a request, the signed-in user, the request id and the client address are recorded."""
    request = RequestFactory().post("/x", REMOTE_ADDR="10.1.2.3")
    request.user = cast["tester"]
    token = context.enter(context.RequestContext("req-7", "10.1.2.3", request))
    try:
        event = record("tests.in_request")
        anonymous = record("tests.in_request", actor=cast["nobody"].__class__())
    finally:
        context.leave(token)
    assert (event.actor_id, event.actor_name, event.request_id, event.ip_address) == (
        cast["tester"].pk,
        "tester",
        "req-7",
        "10.1.2.3",
    )
    assert (anonymous.actor_id, anonymous.actor_name) == (None, "")


def test_the_hash_is_over_the_utc_microsecond_time():
    """C1: the same instant hashes the same however its offset is written."""
    event = record("tests.time")
    same = AuditEvent.objects.get(pk=event.pk)
    same.occurred_at = event.occurred_at.astimezone(datetime.now(UTC).astimezone().tzinfo)
    assert compute_hash(same) == event.hash
    same.occurred_at = event.occurred_at + timedelta(microseconds=1)
    assert compute_hash(same) != event.hash


# --- role grants are configuration changes (C1, E7) ---------------------------------------------------
def test_a_site_role_granted_and_revoked_is_on_record(cast, site_a):
    """C1, E7: who got which role where, and who lost it, with the default reason outside a request."""
    assign_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    granted = AuditEvent.objects.filter(action="accounts.object_permission.granted").latest("seq")
    assert granted.object_type == "guardian.objectpermission" and granted.site_code == "PLA"
    assert granted.after == {
        "holder": "nobody",
        "permission": Role.IT_MANAGER.codename,
        "object": f"site {site_a.pk}",
    }
    assert granted.reason == "granted in administration" and granted.before is None
    remove_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    revoked = AuditEvent.objects.get(action="accounts.object_permission.revoked")
    assert revoked.before == granted.after and revoked.after is None
    assert revoked.object_type == "guardian.objectpermission"
    assert (revoked.site_code, revoked.reason, revoked.object_id) == (
        "PLA",
        "revoked in administration",
        granted.object_id,
    )


def test_a_group_grant_names_the_group(site_a):
    """C1, E7: a role given to a group at a site names the group."""
    group = Group.objects.create(name="Night shift")
    assign_perm(Role.KEY_USER.codename, group, site_a)
    granted = AuditEvent.objects.get(action="accounts.object_permission.granted")
    assert granted.after["holder"] == "group Night shift"
    remove_perm(Role.KEY_USER.codename, group, site_a)
    assert AuditEvent.objects.get(action="accounts.object_permission.revoked").before["holder"] == (
        "group Night shift"
    )


def test_the_reason_typed_on_the_page_is_kept(cast, site_a):
    """C1: the reason typed with the change, trimmed; a GET carries none."""
    post = RequestFactory().post("/admin/", {"audit_reason": "  covers Ingrid  "})
    post.user = cast["admin"]
    token = context.enter(context.RequestContext("r1", None, post))
    try:
        assign_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    finally:
        context.leave(token)
    granted = AuditEvent.objects.filter(action="accounts.object_permission.granted").latest("seq")
    assert (granted.reason, granted.actor_name) == ("covers Ingrid", "admin")
    get = RequestFactory().get("/admin/", {"audit_reason": "ignored"})
    get.user = cast["admin"]
    token = context.enter(context.RequestContext("r2", None, get))
    try:
        remove_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    finally:
        context.leave(token)
    assert AuditEvent.objects.get(action="accounts.object_permission.revoked").reason == (
        "revoked in administration"
    )


def test_a_grant_on_another_kind_of_object_has_no_site(cast, site_a):
    """C1: only a grant on a site names a site."""
    from environments.models import Environment

    env = Environment.objects.filter(site=site_a).first()
    assign_perm("environments.change_environment", cast["nobody"], env)
    granted = AuditEvent.objects.filter(action="accounts.object_permission.granted").latest("seq")
    assert granted.site_code == "" and granted.after["object"] == f"environment {env.pk}"


def test_saving_an_existing_grant_again_records_nothing(cast, site_a):
    """C1: only a new grant is a change; re-saving or loading fixtures (raw) is not."""
    from guardian.models import UserObjectPermission

    assign_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    count = AuditEvent.objects.count()
    UserObjectPermission.objects.get(user=cast["nobody"]).save()
    assert AuditEvent.objects.count() == count
