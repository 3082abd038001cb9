"""Queries per page do not grow with the data (DESIGN.md "Scale"), against a committed baseline.

Every page and API list below is asked once with 10 RFCs and once with 1,000 (bulk-created, with
their impacts, approval rounds, deployments and audit events): both counts must be equal, and equal to
tests/changecontrol/query_counts.json. A change that adds a query on purpose updates the baseline with

    UPDATE_QUERY_COUNTS=1 .venv/bin/python -m pytest tests/changecontrol/test_query_counts.py

and the diff of the JSON file shows it in review (netbox keeps such a baseline too, STYLE.md).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import Approval, ApprovalRound, ApprovalState, ApprovalStep, StepState
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.services import compute_hash
from core import clock
from core.roles import Role
from deployments.models import Deployment, DeploymentState
from environments.models import Environment
from releases.models import Impact, Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import api_client_for, client_for, make_user
from workflow import services as wf

BASELINE = Path(__file__).with_name("query_counts.json")
# Where a page sends fewer statements on PostgreSQL: an audited read appends its event and moves its
# lane's head in one statement there (audit.services._append), in two on SQLite.
ON_POSTGRESQL = {"audit list": -1}
SMALL, LARGE = 10, 1000
# The states the bulk RFCs go through, so every list has rows of its own at both sizes.
STATES = [
    RfcState.DRAFT,
    RfcState.IN_APPROVAL,
    RfcState.APPROVED,
    RfcState.SCHEDULED,
    RfcState.IN_APPROVAL,
    RfcState.CLOSED,
]


def _bulk_rfcs(count: int, *, authors, release, site_a, site_b) -> None:
    """`count` more RFCs with what hangs off them, a few statements per table whatever the count."""
    now = clock.now()
    start = Rfc.objects.count()
    rfcs = Rfc.objects.bulk_create(
        [
            Rfc(
                number=f"RFC-2099-{start + n:05d}",
                title=f"Bulk change {start + n}",
                description="Printers on line 2 time out under load.",
                release=release,
                change_class="patch",
                rollback_plan="Redeploy the previous version",
                author=authors[n % len(authors)],
                state=STATES[(start + n) % len(STATES)],
            )
            for n in range(count)
        ]
    )
    if not rfcs[0].pk:  # databases that do not return keys from a bulk insert
        rfcs = list(Rfc.objects.filter(number__startswith="RFC-2099-").order_by("id")[start:])
    Impact.objects.bulk_create(
        [
            Impact(rfc=rfc, site=site, lines=["Line 1"])
            for i, rfc in enumerate(rfcs)
            for site in (site_a, site_b)[: 1 + i % 2]
        ]
    )
    waiting = [rfc for rfc in rfcs if rfc.state == RfcState.IN_APPROVAL]
    rounds = ApprovalRound.objects.bulk_create(
        [
            ApprovalRound(rfc=rfc, number=1, change_class="patch", content_hash="0" * 64, created_at=now)
            for rfc in waiting
        ]
    )
    if not rounds or not rounds[0].pk:
        rounds = list(ApprovalRound.objects.filter(rfc__in=waiting).order_by("id"))
    steps = ApprovalStep.objects.bulk_create(
        [
            ApprovalStep(
                round=rnd,
                order=1,
                roles=[Role.IT_MANAGER.value],
                rule="all",
                state=StepState.PENDING,
                activated_at=now,
            )
            for rnd in rounds
        ]
    )
    if not steps or not steps[0].pk:
        steps = list(ApprovalStep.objects.filter(round__in=rounds).order_by("id"))
    Approval.objects.bulk_create(
        [
            Approval(
                step=step,
                rfc_id=step.round.rfc_id,
                role=Role.IT_MANAGER,
                site=site,
                state=ApprovalState.PENDING,
            )
            for step in steps
            for site in (site_a,)
        ]
    )
    prod = Environment.objects.get(site=site_a, tier="PROD")
    Deployment.objects.bulk_create(
        [
            Deployment(
                rfc=rfc,
                environment=prod,
                scheduled_start=now + timedelta(days=1, minutes=n),
                scheduled_end=now + timedelta(days=1, minutes=n + 30),
                duration_minutes=30,
                state=DeploymentState.SCHEDULED,
                scheduled_by=authors[0],
            )
            for n, rfc in enumerate(rfcs)
            if rfc.state in (RfcState.APPROVED, RfcState.SCHEDULED)
        ]
    )
    _bulk_audit([rfc.number for rfc in rfcs])


def _bulk_audit(numbers: list[str]) -> None:
    """One event per RFC, chained as `record()` chains them in lane 1 (the trail stays verifiable):
    the global seq after the last event's (PostgreSQL's sequence may have left gaps), then the
    sequence moved past them."""
    ChainHead.objects.get_or_create(id=1)
    head = ChainHead.objects.get(id=1)
    prev = head.hash or GENESIS_HASH
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    events = []
    for number in numbers:
        seq += 1
        event = AuditEvent(
            seq=seq,
            occurred_at=clock.now(),
            actor_name="dev",
            action="releases.rfc.created",
            object_type="releases.rfc",
            object_id=number,
            object_repr=number,
            site_code="PLA",
            after={"state": "draft"},
            prev_hash=prev,
        )
        event.hash = compute_hash(event)
        prev = event.hash
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=500)
    ChainHead.objects.filter(id=1).update(seq=head.seq + len(events), hash=prev)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval('audit_event_seq', %s + 1, false)", [seq])


def _count(client, url: str, **kwargs) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def test_queries_per_page_do_not_grow_and_match_the_baseline(people, site_a, site_b):
    dev, itmanager = people["dev"], people["itmanager"]
    other = make_user("dev2", Role.DEVELOPER)
    release = factories.release(dev, "1.0.1")
    # The RFC whose page the approver opens: filed, signed off and submitted the real way.
    detailed = factories.ready_rfc(dev, people["tester"], site_a, release=release, title="Detail")
    wf.submit(dev, detailed)
    pending = Approval.objects.filter(rfc=detailed, state=ApprovalState.PENDING).first()
    assert pending is not None and pending.role == Role.IT_MANAGER

    grow = {"authors": [dev, other], "release": release, "site_a": site_a, "site_b": site_b}
    _bulk_rfcs(SMALL - Rfc.objects.count(), **grow)
    assert Rfc.objects.count() == SMALL

    clients = {
        "dev": client_for(dev),
        "itmanager": client_for(itmanager),
        "releasemgr": client_for(people["releasemgr"]),
        "auditor": client_for(people["auditor"]),
        "dev api": api_client_for(dev),
        "releasemgr api": api_client_for(people["releasemgr"]),
        "itmanager api": api_client_for(itmanager),
    }
    pages = {
        "home (developer)": ("dev", reverse("home"), {}),
        "home (approver with pending approvals)": ("itmanager", reverse("home"), {}),
        "home (release manager)": ("releasemgr", reverse("home"), {}),
        "RFC list": ("dev", reverse("releases:list"), {}),
        "RFC list, filtered": ("dev", reverse("releases:list") + "?state=open&site=PLA&q=change", {}),
        "my RFCs": ("dev", reverse("releases:mine"), {"follow": True}),
        "approval queue": ("itmanager", reverse("approvals:queue"), {}),
        "RFC detail (approver)": ("itmanager", reverse("releases:detail", args=[detailed.uuid]), {}),
        "audit list": ("auditor", reverse("audit:list"), {}),
        "deployment list API": ("releasemgr api", "/api/v1/deployments/", {}),
        "RFC list API": ("dev api", "/api/v1/rfcs/", {}),
        "RFC list API, filtered": ("dev api", "/api/v1/rfcs/?state=open&site=PLA&q=change", {}),
        "approvals API": ("itmanager api", "/api/v1/approvals/", {}),
    }

    def measure() -> dict[str, int]:
        for who, url, kwargs in pages.values():  # warm caches (content types, permissions) first
            clients[who].get(url, **kwargs)
        return {name: _count(clients[who], url, **kwargs) for name, (who, url, kwargs) in pages.items()}

    small = measure()
    # Every list has rows at the small size already (an empty list skips its prefetch queries).
    home = clients["itmanager"].get(reverse("home")).content.decode()
    assert 'data-testid="home-approve"' in home and detailed.number in home
    home = clients["releasemgr"].get(reverse("home")).content.decode()
    assert 'data-testid="home-deployments"' in home and 'data-testid="home-schedule"' in home
    assert 'data-testid="queue-row"' in clients["itmanager"].get(reverse("approvals:queue")).content.decode()
    for who, url, _ in (
        pages["approvals API"],
        pages["deployment list API"],
        pages["RFC list API, filtered"],
    ):
        assert clients[who].get(url).json()["count"] >= 2, url
    assert "Bulk change" in clients["dev"].get(pages["RFC list, filtered"][1]).content.decode()
    assert "Bulk change" in clients["dev"].get(reverse("releases:mine"), follow=True).content.decode()

    _bulk_rfcs(LARGE - Rfc.objects.count(), **grow)
    assert Rfc.objects.count() == LARGE
    large = measure()

    grown = {name: (small[name], large[name]) for name in pages if small[name] != large[name]}
    assert not grown, f"queries grow with the data (10 RFCs, 1,000 RFCs): {grown}"

    fewer = ON_POSTGRESQL if connection.vendor == "postgresql" else {}
    if os.environ.get("UPDATE_QUERY_COUNTS"):
        written = {name: count - fewer.get(name, 0) for name, count in small.items()}
        BASELINE.write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")
    baseline = {name: count + fewer.get(name, 0) for name, count in json.loads(BASELINE.read_text()).items()}
    assert small == baseline, (
        "query counts differ from tests/changecontrol/query_counts.json; if on purpose, rerun with UPDATE_QUERY_COUNTS=1: "
        f"{ {name: (baseline.get(name), small.get(name)) for name in {*small, *baseline} if baseline.get(name) != small.get(name)} }"
    )
