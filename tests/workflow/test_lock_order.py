"""One lock order for every transition (workflow/transitions.py): the RFC, then approvals, then
deployments. Signing and withdrawing at the same instant, many times over, on PostgreSQL: no
deadlock, no lost update, and the RFC, its round and its signatures always agree (A5, A6)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from approvals.models import Approval, ApprovalRound, ApprovalState, RoundState, Signature
from audit.models import AuditEvent
from core.errors import StateConflict
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD
from workflow import services as wf

ROUNDS = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_signing_and_withdrawing_concurrently_never_deadlock_or_lose_an_update(people, site_a):
    orders = []
    for i in range(ROUNDS):
        rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, version=f"1.0.{i + 1}")
        wf.submit(people["dev"], rfc)
        approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)
        barrier = threading.Barrier(2)
        results: dict[str, object] = {}

        def run(name, action):
            try:
                barrier.wait(10)
                results[name] = action()
            except Exception as exc:  # noqa: BLE001 - every outcome is asserted below
                results[name] = exc
            finally:
                connection.close()

        sign = threading.Thread(
            target=run, args=("sign", lambda: wf.sign(people["itmanager"], approval, "approve", PASSWORD))
        )
        withdraw = threading.Thread(
            target=run,
            args=("withdraw", lambda: wf.transition(people["dev"], rfc, "withdraw", reason="Found a typo")),
        )
        for thread in (sign, withdraw) if i % 2 else (withdraw, sign):
            thread.start()
        sign.join(30)
        withdraw.join(30)
        assert not sign.is_alive() and not withdraw.is_alive(), "a transition hung"

        # Withdrawing always wins its own transition; signing either came first or found nothing to sign.
        assert isinstance(results["withdraw"], Rfc), results
        assert isinstance(results["sign"], Signature | StateConflict), results
        fresh = Rfc.objects.get(pk=rfc.pk)
        assert fresh.state == RfcState.DRAFT
        rnd = ApprovalRound.objects.get(rfc=rfc)
        signatures = Signature.objects.filter(rfc=rfc).count()
        actions = list(
            AuditEvent.objects.filter(
                object_id=rfc.number, action__in=["releases.rfc.approved", "releases.rfc.withdrawn"]
            )
            .order_by("seq")
            .values_list("action", flat=True)
        )
        if isinstance(results["sign"], Signature):
            orders.append("sign first")
            assert signatures == 1 and rnd.state == RoundState.APPROVED
            assert actions == ["releases.rfc.approved", "releases.rfc.withdrawn"]
        else:
            orders.append("withdraw first")
            assert signatures == 0 and rnd.state == RoundState.WITHDRAWN
            assert actions == ["releases.rfc.withdrawn"]
            assert Approval.objects.get(pk=approval.pk).state == ApprovalState.CLOSED
    assert len(orders) == ROUNDS
