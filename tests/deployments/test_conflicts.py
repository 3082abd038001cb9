"""Conflicting changes (issue 16 item 5): booking PROD warns when another RFC touching the same line,
module or interface at the site has a deployment in an overlapping slot at any of its environments —
the release manager acknowledges it (audited) or picks another slot — and refuses outright when both
are PROD at the same site. The RFC page lists the other open changes touching the same items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import RuleViolation
from deployments import conflicts
from deployments.models import Deployment
from tests import factories
from tests.conftest import client_for
from workflow import services as wf

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 9, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
TUESDAY_9 = datetime(2026, 11, 10, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def approved(people, site, version, lines, modules=("Scanning",)):
    return factories.sign_chain(
        people,
        factories.ready_rfc(
            people["dev"],
            people["tester"],
            site,
            version=version,
            impacts=[{"site": site, "lines": list(lines), "modules": list(modules)}],
        ),
    )


def test_an_overlapping_uat_run_on_the_same_line_is_acknowledged_and_audited(people, site_a):
    ours = approved(people, site_a, "1.0.1", ["Line 2"])
    theirs = approved(people, site_a, "1.0.2", ["Line 2", "Line 3"], ["Weighing"])
    start = TUESDAY_9.astimezone(UTC)
    factories.booking(
        theirs, site_a, people["releasemgr"], tier="UAT", hours_ahead=(start - NOW).total_seconds() / 3600
    )

    with pytest.raises(RuleViolation) as refused:
        wf.schedule(people["releasemgr"], ours, site_a, TUESDAY_9, 30)
    assert refused.value.rule == conflicts.RULE
    assert theirs.number in str(refused.value) and "production line Line 2" in str(refused.value)
    assert not Deployment.objects.filter(rfc=ours, environment__tier="PROD").exists()

    booked = wf.schedule(people["releasemgr"], ours, site_a, TUESDAY_9, 30, acknowledge_conflicts=True)
    event = AuditEvent.objects.get(action="releases.deployment.conflict_acknowledged")
    assert event.actor_name == "releasemgr" and booked.state == "scheduled"
    assert event.after == {
        "conflicts": [{"rfc": theirs.number, "environment": "PLA UAT", "items": ["production line Line 2"]}]
    }


def test_no_shared_item_or_no_overlap_is_no_conflict(people, site_a):
    ours = approved(people, site_a, "1.0.1", ["Line 2"])
    other_line = approved(people, site_a, "1.0.2", ["Line 7"], ["Weighing"])
    start = TUESDAY_9.astimezone(UTC)
    factories.booking(
        other_line, site_a, people["releasemgr"], tier="UAT", hours_ahead=(start - NOW).total_seconds() / 3600
    )
    later = approved(people, site_a, "1.0.3", ["Line 2"])
    factories.booking(
        later, site_a, people["releasemgr"], tier="UAT", hours_ahead=(start - NOW).total_seconds() / 3600 + 5
    )
    assert conflicts.touching(ours, site_a, start, start + timedelta(hours=1)) == []
    assert wf.schedule(people["releasemgr"], ours, site_a, TUESDAY_9, 30).state == "scheduled"


def test_two_prod_deployments_at_one_site_never_overlap(people, site_a):
    first = approved(people, site_a, "1.0.1", ["Line 2"])
    second = approved(people, site_a, "1.0.2", ["Line 2"])
    wf.schedule(people["releasemgr"], first, site_a, TUESDAY_9, 30)
    with pytest.raises(RuleViolation) as refused:
        wf.schedule(people["releasemgr"], second, site_a, TUESDAY_9, 30, acknowledge_conflicts=True)
    assert refused.value.rule == "Deployment window" and first.number in str(refused.value)


def test_the_schedule_page_asks_for_the_acknowledgement(people, site_a):
    ours = approved(people, site_a, "1.0.1", ["Line 2"])
    theirs = approved(people, site_a, "1.0.2", ["Line 2"])
    start = TUESDAY_9.astimezone(UTC)
    factories.booking(
        theirs, site_a, people["releasemgr"], tier="UAT", hours_ahead=(start - NOW).total_seconds() / 3600
    )
    client = client_for(people["releasemgr"])
    url = reverse("releases:schedule", args=[ours.uuid])
    form = {"site": "PLA", "duration": "30", "start": "2026-11-10T09:00"}
    refused = client.post(url, form)
    page = refused.content.decode()
    assert (
        refused.status_code == 422 and 'data-testid="acknowledge-conflicts"' in page and theirs.number in page
    )
    assert client.post(url, {**form, "acknowledge_conflicts": "on"}).status_code == 302


def test_the_rfc_page_lists_other_open_changes_touching_the_same_items(people, site_a):
    ours = approved(people, site_a, "1.0.1", ["Line 2"])
    theirs = approved(people, site_a, "1.0.2", ["Line 2"], ["Weighing"])
    factories.booking(theirs, site_a, people["releasemgr"], tier="UAT", hours_ahead=30)
    factories.rfc(
        people["dev"],
        site_a,
        version="1.0.3",
        impacts=[{"site": site_a, "lines": ["Line 9"], "modules": ["Other"]}],
    )
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[ours.uuid])).content.decode()
    assert 'data-testid="neighbours"' in page and theirs.number in page and "production line Line 2" in page
    assert "booked UAT" in page
    found = conflicts.neighbours(ours, ours.impacts.all())
    assert [n["rfc"].number for n in found[site_a.pk]] == [theirs.number]


def test_a_pipeline_acknowledges_over_the_api(people, site_a):
    from tests.conftest import api_client_for

    ours = approved(people, site_a, "1.0.1", ["Line 2"])
    theirs = approved(people, site_a, "1.0.2", ["Line 2"])
    start = TUESDAY_9.astimezone(UTC)
    factories.booking(
        theirs, site_a, people["releasemgr"], tier="UAT", hours_ahead=(start - NOW).total_seconds() / 3600
    )
    api = api_client_for(people["releasemgr"])
    body = {"site": "PLA", "start": TUESDAY_9.isoformat(), "duration": 30}
    refused = api.post(f"/api/v1/rfcs/{ours.uuid}/schedule/", body, format="json")
    assert refused.status_code == 422 and refused.json()["rule"] == conflicts.RULE
    booked = api.post(
        f"/api/v1/rfcs/{ours.uuid}/schedule/", {**body, "acknowledge_conflicts": True}, format="json"
    )
    assert booked.status_code == 201, booked.json()
