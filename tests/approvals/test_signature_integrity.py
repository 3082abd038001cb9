"""The signatures' integrity check (FAULTS.md case 10, A6 / §11.70): a signed RFC edited straight in
the database is reported, recorded and mailed as an incident; an edit through the portal is not."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from approvals import integrity, services
from approvals.models import Signature
from audit.models import AuditEvent
from outbox.models import Mail
from releases.models import Rfc
from tests import factories
from workflow import services as wf

pytestmark = pytest.mark.django_db


def signed(people, site, version="1.1.0"):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site, version=version)
    return factories.sign_chain(people, rfc)


def sql(statement: str, params) -> None:
    """As the database owner would, behind the portal's back (no model, no audit, no voiding)."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_intact_signatures_and_a_portal_edit_raise_nothing(people, site_a):
    rfc = signed(people, site_a)
    other = signed(people, site_a, version="1.2.0")
    wf.transition(people["dev"], other, "withdraw", reason="Typo in the rollback plan")
    wf.update_rfc(people["dev"], Rfc.objects.get(pk=other.pk), rollback_plan="Redeploy 1.0.0 only")

    result = integrity.verify_signatures()

    live = Signature.objects.filter(voided_at__isnull=True)
    assert live.filter(rfc=rfc).count() == 2 and not live.filter(rfc=other).exists()
    assert result["checked"] == 2 and result["mismatches"] == 0 and result["problems"] == []
    summary = AuditEvent.objects.get(action=integrity.VERIFIED)
    assert summary.after == {"checked": 2, "mismatches": 0, "new": 0}
    assert not AuditEvent.objects.filter(action=integrity.TAMPERED).exists()
    assert not Mail.objects.filter(kind="approvals.integrity").exists()


def test_a_title_changed_in_the_database_is_an_incident_once(people, site_a):
    rfc = signed(people, site_a)
    signatures = list(Signature.objects.filter(rfc=rfc).order_by("pk"))
    sql("UPDATE releases_rfc SET title = %s WHERE id = %s", ["Quietly changed", rfc.pk])

    result = integrity.verify_signatures()

    assert result["mismatches"] == len(signatures) == result["new"] == 2
    assert all("changed outside the portal: fields.title" in line for line in result["problems"])
    incidents = AuditEvent.objects.filter(action=integrity.TAMPERED).order_by("seq")
    assert [event.after["signature"] for event in incidents] == [s.pk for s in signatures]
    first = incidents[0]
    assert first.object_type == "releases.rfc" and first.object_id == rfc.number
    assert first.after["kind"] == "content" and first.after["parts"] == ["fields.title"]
    assert first.after["signed_hash"] == signatures[0].content_hash
    assert first.after["found_hash"] == services.content_hash(rfc) != signatures[0].content_hash
    mails = Mail.objects.filter(kind="approvals.integrity")
    assert mails.count() == 2
    assert set(mails[0].to) == {"admin@plant.test", "admin_a@plant.test", "auditor@plant.test"}
    assert mails[0].subject.startswith("[URGENT]") and rfc.number in mails[0].subject
    assert "fields.title" in mails[0].body
    # The approvals gate already refuses it; the check is what tells someone.
    assert not services.approvals_complete(Rfc.objects.get(pk=rfc.pk))[0]

    again = integrity.verify_signatures()  # the next night: still reported, not mailed again
    assert again["mismatches"] == 2 and again["new"] == 0
    assert AuditEvent.objects.filter(action=integrity.TAMPERED).count() == 2
    assert Mail.objects.filter(kind="approvals.integrity").count() == 2


def test_an_edited_impact_and_evidence_are_named(people, site_a):
    rfc = signed(people, site_a)
    sql("UPDATE releases_impact SET notes = %s WHERE rfc_id = %s", ["Line 3 as well", rfc.pk])
    sql("UPDATE releases_evidence SET sha256 = %s WHERE rfc_id = %s", ["f" * 64, rfc.pk])

    _, found = integrity.check()

    assert {mismatch.kind for mismatch in found} == {"content"}
    assert set(found[0].parts) >= {"fields.impact[0].notes"} and any(
        part.startswith("evidence") for part in found[0].parts
    )


def test_an_edited_signature_row_is_an_incident(people, site_a):
    rfc = signed(people, site_a)
    signature = Signature.objects.filter(rfc=rfc).order_by("pk").first()
    content = {**signature.content, "number": "RFC-FORGED"}
    sql(
        "UPDATE approvals_signature SET content = %s WHERE id = %s",
        [json.dumps(content), signature.pk],
    )

    result = integrity.verify_signatures()

    assert result["mismatches"] == 1
    event = AuditEvent.objects.get(action=integrity.TAMPERED)
    assert event.after["kind"] == "signature" and event.after["signature"] == signature.pk
    assert "the signature row was edited" in event.reason


def test_the_command_fails_on_a_mismatch(people, site_a, capsys):
    """(Beat's nightly entry is checked with every scheduled task in test_task_names.py.)"""
    rfc = signed(people, site_a)
    call_command("verify_signatures")
    assert "Signatures intact: 2 live signatures checked" in capsys.readouterr().out
    sql("UPDATE releases_rfc SET description = %s WHERE id = %s", ["Something else", rfc.pk])
    with pytest.raises(CommandError, match=r"2 signature\(s\) no longer match their RFC"):
        call_command("verify_signatures")
