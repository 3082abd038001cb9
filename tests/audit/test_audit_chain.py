"""The audit core: append-only, hash-chained, verifiable (C1)."""

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.services import record, verify
from tests.conftest import PASSWORD


def _tamper(sql: str, params=()) -> None:
    """Change the table behind the application's back, as an intruder with SQL access would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # skips the append-only triggers
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = origin")


@pytest.mark.django_db
def test_record_appends_linked_events():
    first = record(
        "tests.thing.created", actor_name="alice", object_type="tests.thing", object_id="1", after={"n": 1}
    )
    second = record(
        "tests.thing.updated",
        actor_name="alice",
        object_type="tests.thing",
        object_id="1",
        before={"n": 1},
        after={"n": 2},
        reason="because",
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert len(second.hash) == 64 and second.hash != first.hash
    head = ChainHead.objects.get(id=1)  # one connection, one after another: all in lane 1
    assert (head.seq, head.hash) == (2, second.hash)
    assert verify().as_dict() == {"ok": True, "count": 2, "head": second.hash, "first_bad": None}


@pytest.mark.django_db
def test_event_rolls_back_with_the_change_it_describes():
    with pytest.raises(RuntimeError), transaction.atomic():
        record("tests.thing.created", actor_name="alice")
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 0
    assert verify().ok


@pytest.mark.django_db
def test_request_context_lands_in_the_event(client, cast):
    client.post(
        "/accounts/login/",
        {"username": "dev", "password": PASSWORD},
        HTTP_X_REQUEST_ID="req-42",
        REMOTE_ADDR="10.1.2.3",
    )
    event = AuditEvent.objects.get(action="accounts.login.succeeded")
    assert (event.actor_name, event.request_id, event.ip_address) == ("dev", "req-42", "10.1.2.3")


@pytest.mark.django_db
def test_logins_logouts_and_failures_are_recorded(client, cast):
    assert not client.login(username="dev", password="wrong")
    assert client.login(username="dev", password=PASSWORD)
    client.post("/accounts/logout/")
    actions = list(
        AuditEvent.objects.filter(action__startswith="accounts.log")
        .order_by("seq")
        .values_list("action", "actor_name")
    )
    assert actions == [
        ("accounts.login.failed", "dev"),
        ("accounts.login.succeeded", "dev"),
        ("accounts.logged_out", "dev"),
    ]
    failed = AuditEvent.objects.get(action="accounts.login.failed")
    assert "wrong" not in str(failed.after) and failed.actor_id is None


@pytest.mark.django_db
def test_raw_update_is_detected_by_audit_verify():
    for n in range(5):
        record("tests.thing.updated", actor_name="alice", after={"n": n})
    call_command("audit_verify")  # intact: no error
    _tamper("UPDATE audit_auditevent SET actor_name = %s WHERE seq = 3", ["mallory"])
    result = verify()
    assert (result.ok, result.first_bad) == (False, 3)
    with pytest.raises(CommandError, match="broken at event #3"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_deleted_and_inserted_events_are_detected():
    events = [record("tests.thing.updated", actor_name="alice", after={"n": n}) for n in range(4)]
    _tamper("DELETE FROM audit_auditevent WHERE seq = 2")
    assert (verify().ok, verify().first_bad) == (False, 3)
    # Put a forged event in its place: the content hash and the link no longer agree.
    forged = events[1]
    _tamper(
        "INSERT INTO audit_auditevent (seq, occurred_at, actor_name, action, object_type, object_id, "
        "object_repr, site_code, request_id, reason, prev_hash, hash) "
        "VALUES (2, %s, 'mallory', 'tests.thing.updated', '', '', '', '', '', '', %s, %s)",
        [forged.occurred_at, forged.prev_hash, forged.hash],
    )
    assert (verify().ok, verify().first_bad) == (False, 2)


@pytest.mark.django_db
def test_truncated_tail_is_detected_against_the_head():
    for n in range(3):
        record("tests.thing.updated", actor_name="alice", after={"n": n})
    _tamper("DELETE FROM audit_auditevent WHERE seq = 3")
    result = verify()
    assert not result.ok and "chain head says #3" in result.problem


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET actor_name = 'mallory'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
    ],
)
def test_postgres_triggers_refuse_changes(statement):
    record("tests.thing.created", actor_name="alice")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.filter(actor_name="alice").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_writers_leave_one_unbroken_chain():
    from django.db import connections

    writers, errors = 50, []
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                record("tests.concurrent.write", actor_name=f"writer-{n}", after={"n": n})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    result = verify()
    assert result.ok and result.count == writers
    assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, writers + 1))
    assert {n for (n,) in AuditEvent.objects.values_list("after__n")} == set(range(writers))


@pytest.mark.django_db
def test_nightly_task_records_the_verification():
    from audit.tasks import verify_chain

    record("tests.thing.created", actor_name="alice")
    assert verify_chain() == {
        "ok": True,
        "count": 1,
        "head": AuditEvent.objects.get(seq=1).hash,
        "first_bad": None,
    }
    event = AuditEvent.objects.get(action="audit.chain.verified")
    assert event.after["ok"] is True and event.after["count"] == 1


@pytest.mark.django_db
def test_api_verify_and_list_for_auditors_only(cast):
    from tests.conftest import api_client_for

    record("tests.thing.created", actor_name="alice")
    body = api_client_for(cast["auditor"]).get("/api/v1/audit/verify/").json()
    assert body["ok"] is True and body["first_bad"] is None and body["count"] >= 1
    assert api_client_for(cast["dev"]).get("/api/v1/audit/").status_code == 403
    listed = api_client_for(cast["admin"]).get("/api/v1/audit/?action=tests.thing.created").json()
    assert [row["actor_name"] for row in listed["results"]] == ["alice"]


def test_the_hash_of_a_fixed_event_never_changes():
    """C1: every stored chain is verified with this function after an upgrade; its canonical form
    (fields, key order, separators, timestamp format) is pinned to a fixed value."""
    from datetime import UTC, datetime

    from audit.models import AuditEvent as Event
    from audit.services import compute_hash

    event = Event(
        seq=7,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        actor_id=3,
        actor_name="dev",
        action="releases.rfc.submitted",
        object_type="releases.rfc",
        object_id="RFC-2026-0001",
        object_repr="Label layout v2",
        site_code="BER",
        before={"state": "draft"},
        after={"state": "submitted", "change_class": "minor"},
        request_id="req-1",
        ip_address="10.0.0.1",
        reason="",
        prev_hash="0" * 64,
    )
    assert compute_hash(event) == "c55e3f658845cda0af7a696e86add3e7a4b2447d6735a8d46546cdf012b39767"


@pytest.mark.django_db
def test_sqlite_writes_one_lane_whatever_the_setting(settings):
    """Audit lanes are a PostgreSQL matter: SQLite serialises writers, one chain, seq = head + 1."""
    from audit.services import lanes

    settings.AUDIT_LANES = 8
    first = record("tests.thing.created", actor_name="alice")
    second = record("tests.thing.created", actor_name="alice")
    if connection.vendor == "postgresql":
        assert lanes() == 8
        return
    assert lanes() == 1
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.hash)
    assert list(ChainHead.objects.values_list("id", "seq")) == [(1, 2)]
