"""The audit trail for admins and auditors (C1, 21 CFR 11.10(e), Annex 11 §9–10): filters,
keyset pages stable under inserts, streaming export with formula neutralisation, verification against
heads published outside the database, reading logged."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.urls import reverse

from audit import trail
from audit.models import AuditEvent, ChainHead
from audit.services import compute_hash, record, verify
from audit.tasks import verify_chain
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def heads_file(settings, tmp_path):
    settings.AUDIT_HEADS_FILE = tmp_path / "heads.jsonl"
    return settings.AUDIT_HEADS_FILE


def seed(n: int, **fields) -> None:
    for i in range(n):
        record(
            fields.get("action", "tests.thing.changed"),
            actor_name=fields.get("actor", "alice"),
            object_type="releases.rfc",
            object_id=fields.get("object", f"RFC-2026-{i:04d}"),
            site_code=fields.get("site", "PLA"),
            reason=fields.get("reason", f"reason {i}"),
        )


def rows(response) -> list[int]:
    return [e.seq for e in response.context["events"]]


# --- Filters and pages -------------------------------------------------------------------------------
def test_only_admins_and_auditors_read_the_trail(cast):
    assert client_for(cast["dev"]).get(reverse("audit:list")).status_code == 403
    assert client_for(cast["releasemgr"]).get(reverse("audit:export_csv")).status_code == 403
    assert client_for(cast["auditor"]).get(reverse("audit:list")).status_code == 200


def test_filters(cast):
    seed(3, object="RFC-2026-0042", site="PLB", actor="bob", action="releases.rfc.submit")
    seed(4)
    record(
        "releases.rfc.reject",
        actor_name="carol",
        object_type="releases.rfc",
        object_id="RFC-2026-0042",
        reason="Undo script missing for the labels table",
    )
    client = client_for(cast["auditor"])
    url = reverse("audit:list")

    def matching(**query):
        return {
            e.action for e in client.get(url, query).context["events"] if e.action.startswith("releases.")
        } | {e.object_id for e in client.get(url, query).context["events"] if e.object_id.startswith("RFC")}

    assert len(client.get(url, {"object": "RFC-2026-0042"}).context["events"]) == 4
    assert {e.actor_name for e in client.get(url, {"actor": "bob"}).context["events"]} == {"bob"}
    assert {e.site_code for e in client.get(url, {"site": "PLB"}).context["events"]} == {"PLB"}
    assert [e.actor_name for e in client.get(url, {"text": "undo script"}).context["events"]] == ["carol"]
    assert {e.action for e in client.get(url, {"action": "releases.rfc"}).context["events"]} == {
        "releases.rfc.submit",
        "releases.rfc.reject",
    }
    assert client.get(url, {"start": "2026-13-45"}).status_code == 400
    assert matching(start="2000-01-01", end="2999-12-31")


def test_keyset_pages_are_stable_under_inserts(cast):
    seed(120)
    client = client_for(cast["auditor"])
    url = reverse("audit:list")
    first = client.get(url, {"action": "tests."})
    page_one = rows(first)
    assert len(page_one) == 50 and page_one == sorted(page_one, reverse=True)
    older = first.context["older"]
    seed(30)  # new events arrive while the auditor reads
    second = rows(client.get(url, {"action": "tests.", "before": older}))
    assert second[0] == page_one[-1] - 1 and len(second) == 50  # exactly where page one ended
    newer = rows(client.get(url, {"action": "tests.", "after": page_one[0]}))
    assert newer == list(
        AuditEvent.objects.filter(action__startswith="tests.", seq__gt=page_one[0])
        .order_by("-seq")
        .values_list("seq", flat=True)
    )  # the 30 that arrived
    assert len(newer) == 30


def test_reading_the_trail_is_logged(cast):
    client_for(cast["auditor"]).get(reverse("audit:list"), {"object": "RFC-2026-0001"})
    event = AuditEvent.objects.filter(action="audit.trail.read").latest("seq")
    assert event.actor_name == "auditor" and event.after["filters"] == {"object": "RFC-2026-0001"}


def test_page_queries_do_not_grow_with_the_trail(cast):
    from django.test.utils import CaptureQueriesContext

    client = client_for(cast["auditor"])
    seed(10)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("audit:list"))
    seed(200)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("audit:list"))
    assert len(many.captured_queries) == len(few.captured_queries)


# --- Export ---------------------------------------------------------------------------------------------
DANGEROUS = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


def test_csv_export_neutralises_formulas_and_streams(cast):
    for text in DANGEROUS:
        record(
            "tests.csv.injection",
            actor_name="mallory",
            object_type="x",
            object_id="RFC-2026-0099",
            reason=text,
        )
    response = client_for(cast["auditor"]).get(reverse("audit:export_csv"), {"object": "RFC-2026-0099"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content).decode()
    table = list(csv.DictReader(io.StringIO(body)))
    reasons = [row["reason"] for row in table]
    assert reasons == ["'" + text for text in DANGEROUS]
    assert all(
        not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in table for cell in row.values()
    )
    assert AuditEvent.objects.filter(action="audit.trail.exported").exists()


def test_jsonl_export_is_one_event_per_line(cast):
    seed(5, object="RFC-2026-0007")
    response = client_for(cast["admin"]).get(reverse("audit:export_jsonl"), {"object": "RFC-2026-0007"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 5 and [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert set(events[0]) >= {"seq", "occurred_at", "actor_name", "action", "hash", "prev_hash"}


def test_neutralise():
    assert trail.neutralise("=1+1") == "'=1+1" and trail.neutralise("plain") == "plain"
    assert trail.neutralise("") == ""


# --- Verification ---------------------------------------------------------------------------------------
def _raw(sql: str, params=()) -> None:
    """Tamper like someone with database access would: around the append-only triggers on PostgreSQL."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_verify_detects_a_modified_event():
    seed(5)
    _raw("UPDATE audit_auditevent SET reason = 'nothing to see' WHERE seq = 3")
    result = verify()
    assert not result.ok and result.first_bad == 3 and "content" in result.problem


def test_verify_detects_a_deleted_event():
    seed(5)
    _raw("DELETE FROM audit_auditevent WHERE seq = 2")
    result = verify()
    assert not result.ok and result.first_bad == 3


def test_verify_detects_an_inserted_event():
    seed(5)
    last = AuditEvent.objects.order_by("-seq").first()
    forged = AuditEvent(
        seq=last.seq + 1,
        occurred_at=last.occurred_at,
        actor_name="mallory",
        action="tests.forged",
        object_type="x",
        object_id="y",
        prev_hash=last.hash,
        reason="inserted",
    )
    forged.hash = compute_hash(forged)  # a perfect link, but the chain head was not moved
    _raw(
        "INSERT INTO audit_auditevent (seq, occurred_at, actor_name, action, object_type, object_id, object_repr, "
        "site_code, request_id, reason, prev_hash, hash) VALUES (%s, %s, 'mallory', 'tests.forged', 'x', 'y', '', "
        "'', '', 'inserted', %s, %s)",
        [forged.seq, forged.occurred_at, forged.prev_hash, forged.hash],
    )
    result = verify()
    assert not result.ok and "chain head" in result.problem


def test_a_rewritten_chain_is_caught_by_the_published_head(heads_file):
    seed(5)
    verify_chain()  # nightly: verified, then the head is published outside the database
    published = json.loads(heads_file.read_text().splitlines()[-1])
    head = ChainHead.objects.get(id=1)
    assert published["seq"] == head.seq and published["hash"] == head.hash
    # Rewrite every event from #2 on and recompute the whole chain, head row included: it verifies inside.
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
    assert not result.ok and "rewritten" in result.problem


def test_verify_from_the_page_and_the_result_shown(cast):
    seed(3)
    client = client_for(cast["auditor"])
    assert client.post(reverse("audit:verify")).status_code == 302
    verify_chain()  # what the worker runs
    page = client.get(reverse("audit:list")).content.decode()
    assert "Chain intact" in page and "Heads published outside the database" in page


def test_object_permission_grants_are_audited(cast, site_a):
    from guardian.shortcuts import assign_perm, remove_perm

    from core.roles import Role

    assign_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    granted = AuditEvent.objects.filter(action="accounts.object_permission.granted").latest("seq")
    assert granted.site_code == site_a.code and granted.after["holder"] == "nobody"
    remove_perm(Role.IT_MANAGER.codename, cast["nobody"], site_a)
    assert AuditEvent.objects.filter(action="accounts.object_permission.revoked").exists()


def test_date_range_filter(cast):
    from datetime import UTC, datetime

    import time_machine

    for day in (1, 2, 3, 4):
        with time_machine.travel(datetime(2026, 3, day, 12, tzinfo=UTC), tick=False):
            record("tests.dated", actor_name="alice", object_type="x", object_id=f"D{day}")
    client = client_for(cast["auditor"])
    found = client.get(
        reverse("audit:list"), {"action": "tests.dated", "start": "2026-03-02", "end": "2026-03-03"}
    )
    assert [e.object_id for e in found.context["events"]] == ["D3", "D2"]
    empty = client.get(reverse("audit:list"), {"action": "tests.dated", "start": "2030-01-01"})
    assert empty.context["events"] == []


def test_the_object_permissions_page_asks_for_a_reason(cast, site_a):
    from django.contrib.auth.models import Permission

    from core.roles import Role

    client = client_for(cast["admin"])
    url = f"/admin/environments/site/{site_a.pk}/permissions/user-manage/{cast['nobody'].pk}/"
    permission = Permission.objects.get(codename=Role.IT_MANAGER.codename)
    refused = client.post(url, {"permissions": [permission.codename]})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    client.post(url, {"permissions": [permission.codename], "audit_reason": "Covers Ingrid during the audit"})
    granted = AuditEvent.objects.filter(action="accounts.object_permission.granted").latest("seq")
    assert granted.reason == "Covers Ingrid during the audit" and granted.actor_name == "admin"


def test_a_row_shows_the_event_in_utc_with_its_label_cut_texts_and_change(cast, settings):
    """The page renders prepared rows (reports.audit_views.rows) for speed: each value must read as
    the event says — the time in UTC whatever the portal's zone, the action's label and code, texts cut
    with an ellipsis, empty values as a dash, before/after only when recorded (C1)."""
    from datetime import UTC, datetime

    import time_machine
    from django.contrib.auth.models import User
    from django.utils import timezone

    settings.TIME_ZONE = "America/Chicago"
    named = User.objects.create_user("<b>" + "x" * 70)
    with time_machine.travel(datetime(2026, 3, 1, 23, 30, 5, tzinfo=UTC), tick=False):
        event = record(
            "releases.rfc.submitted",
            named,
            actor_name="",
            reason="r" * 250 + " <script>",
            before={"state": "draft"},
            after={"state": "submitted"},
        )
    bare = record("tests.thing.changed", actor_name="alice", object_type="x", object_id="")
    with timezone.override("America/Chicago"):
        response = client_for(cast["auditor"]).get(reverse("audit:list"))
    html = response.content.decode()
    newest, submitted = html.split('data-testid="audit-row"')[2:4]  # the page read itself is the first row
    assert f"<td>{bare.seq}</td>" in newest and "<details>" not in newest and "<td>alice</td>" in newest
    assert "<td>—<br>" in newest  # no object id
    assert f"<td>{event.seq}</td>" in submitted
    assert '<td class="nowrap">2026-03-01 23:30:05</td>' in submitted  # UTC, not Chicago's 17:30
    assert "<td>—</td>" in submitted  # no actor
    assert 'data-action="releases.rfc.submitted"' in submitted and "RFC submitted" in submitted
    assert '<small class="muted">&lt;b&gt;' + "x" * 56 + "…</small>" in submitted  # 60 characters, escaped
    assert "r" * 199 + "…<details>" in submitted and "<script>" not in html
    assert "{&#x27;state&#x27;: &#x27;draft&#x27;}\n→ {&#x27;state&#x27;: &#x27;submitted&#x27;}" in submitted
