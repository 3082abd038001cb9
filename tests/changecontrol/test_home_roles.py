"""Home pages that answer each role's first question (issue 17 item 2): the auditor's — chain status
with the last verification and the published head, waived gates, emergency changes, who holds Admin
and failed sign-ins in the last 30 days; the release manager's failed and rolled-back deployments;
the IT and plant managers' dashboard summary for their sites. Fixed query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import tasks as audit_tasks
from audit.services import record
from core.roles import Role
from deployments.states import DeploymentState as S
from releases.models import GateWaiver, Rfc
from reports import oversight
from tests import factories
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def home(user) -> str:
    response = client_for(user).get(reverse("home"))
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</section>", start)]


def waive(item, by, when) -> GateWaiver:
    """A waiver row of the UAT freshness gate (as workflow.waivers leaves it)."""
    return GateWaiver.objects.create(
        rfc=item,
        gate="UAT data fresh",
        artifact_sha256=item.release.artifact_sha256,
        reason="refresh runs tonight",
        failing_reason="UAT data is 40 days old",
        waived_by=by,
        waived_at=when,
    )


def fail_sign_in(username: str, times: int = 1) -> None:
    for _ in range(times):
        Client().post(reverse("login"), {"username": username, "password": "wrong"})


def test_the_auditor_sees_the_chain_not_yet_verified_then_intact(people):
    auditor = people["auditor"]
    assert "Not verified yet" in section(home(auditor), "home-audit")
    audit_tasks.verify_chain()
    chain = section(home(auditor), "home-audit")
    assert 'data-testid="chain-state">Intact' in chain
    assert "every link and hash as recorded" in chain
    assert "Last published head</dt><dd>event" in chain  # a verified head is published


def test_a_broken_verification_is_shown_with_its_problem(people):
    record(
        "audit.chain.verified",
        actor_name="system",
        object_type="audit.chain",
        after={
            "ok": False,
            "count": 3,
            "head": "0" * 64,
            "first_bad": 2,
            "problem": "#2 content does not match",
        },
    )
    chain = section(home(people["auditor"]), "home-audit")
    assert 'data-testid="chain-state">Broken' in chain and "#2 content does not match" in chain


def test_the_auditor_sees_waivers_emergencies_admins_and_failed_sign_ins(people, site_a):
    item = factories.rfc(people["dev"], site_a, title="Hotfix the label queue")
    Rfc.objects.filter(pk=item.pk).update(emergency=True, emergency_reason="Line 2 down", submitted_at=NOW)
    old = factories.rfc(people["dev"], site_a, version="1.0.2", title="Old emergency")
    Rfc.objects.filter(pk=old.pk).update(emergency=True, submitted_at=NOW - timedelta(days=45))
    waive(item, people["releasemgr"], NOW - timedelta(days=1))
    fail_sign_in("mallory", 3)
    fail_sign_in("dev")
    html = home(people["auditor"])

    waivers = section(html, "home-waivers")
    assert item.number in waivers and "UAT data fresh" in waivers and "Releasemgr" in waivers
    emergencies = section(html, "home-emergencies")
    assert "Hotfix the label queue" in emergencies and "Old emergency" not in emergencies
    assert "metric=emergency" in emergencies
    admins = section(html, "home-admins")
    assert "Admin" in admins and "every site (group" in admins
    assert "Admin_a" in admins and "PLA (direct)" in admins
    failed = section(html, "home-failed-logins")
    assert ">4<" in failed  # the badge
    assert "<td>mallory</td><td>3</td>" in failed and "<td>dev</td><td>1</td>" in failed
    assert "action=accounts.login.failed" in failed


def test_only_auditors_and_admins_see_the_audit_sections(people):
    for name in ("dev", "releasemgr", "itmanager"):
        assert 'data-testid="home-audit"' not in home(people[name]), name
    assert 'data-testid="home-audit"' in home(people["admin"])


def test_a_release_manager_sees_what_failed_or_rolled_back_lately(people, site_a):
    recent = factories.rfc(people["dev"], site_a, title="Rolled back lately")
    factories.booking(
        recent,
        site_a,
        people["releasemgr"],
        hours_ahead=-30,
        state=S.ROLLED_BACK,
        finished_at=NOW - timedelta(days=1),
    )
    older = factories.rfc(people["dev"], site_a, version="1.0.2", title="Failed long ago")
    factories.booking(
        older,
        site_a,
        people["releasemgr"],
        hours_ahead=-24 * 30,
        state=S.FAILED,
        finished_at=NOW - timedelta(days=20),
    )
    failures = section(home(people["releasemgr"]), "home-failures")
    assert recent.number in failures and "Rolled back" in failures
    assert older.number not in failures
    assert 'data-testid="home-failures"' not in home(people["dev"])


def test_managers_see_the_figures_of_their_own_sites(people, site_a):
    plant_a = make_user("plantdirector_a", Role.PLANT_DIRECTOR, site=site_a)
    summary = section(home(plant_a), "home-summary")
    assert "How change is going at PLA" in summary
    assert 'data-testid="figure-failure-rate"' in summary and "site=PLA" in summary
    assert "PLA, PLB" in section(home(people["itmanager"]), "home-summary")
    for name in ("dev", "tester", "releasemgr", "auditor"):
        assert 'data-testid="home-summary"' not in home(people[name]), name


def test_the_auditor_home_costs_the_same_queries_however_much_happened(people, site_a):
    client = client_for(people["auditor"])

    def count():
        with CaptureQueriesContext(connection) as seen:
            assert client.get(reverse("home")).status_code == 200
        return len(seen)

    count()
    few = count()
    for n in range(12):
        item = factories.rfc(people["dev"], site_a, version=f"1.1.{n}")
        Rfc.objects.filter(pk=item.pk).update(emergency=True, submitted_at=NOW)
        waive(item, people["releasemgr"], NOW)
        make_user(f"admin{n}", Role.ADMIN)
        fail_sign_in(f"guess{n}", 2)
    assert count() == few


def summary_of(user) -> tuple[str, int]:
    """The home's summary for `user`, and how many of the figures' aggregates the view asked for."""
    with CaptureQueriesContext(connection) as seen:
        html = home(user)
    computed = [q for q in seen.captured_queries if 'COUNT("releases_deployment"."id")' in q["sql"]]
    return section(html, "home-summary"), len(computed)


def test_the_managers_figures_are_kept_a_few_minutes_and_say_as_of_when(people, site_a):
    """The key figures are computed once per FIGURES_FOR for the same sites and period (the first
    view computes them, the next ones read them from the cache) and the page says as of when; once
    that time has passed the next view computes them afresh."""
    manager = people["itmanager"]
    first, computed = summary_of(manager)
    assert computed and "as of 12:00 UTC" in first  # PLA and PLB: the period is in UTC
    assert "0 PROD deployments succeeded in 30 days" in first
    item = factories.rfc(people["dev"], site_a, title="Done")
    factories.booking(
        item,
        site_a,
        people["releasemgr"],
        hours_ahead=-3,
        state=S.SUCCEEDED,
        started_at=NOW - timedelta(hours=3),
        finished_at=NOW - timedelta(hours=2),
    )
    with time_machine.travel(NOW + oversight.FIGURES_FOR - timedelta(seconds=1), tick=False):
        kept, computed = summary_of(manager)
        assert computed == 0 and "as of 12:00 UTC" in kept
        assert "0 PROD deployments succeeded in 30 days" in kept
        # Another manager of the same sites reads the same figures; one of PLA alone has its own.
        assert summary_of(people["opsmanager"]) == (kept, 0)
        assert summary_of(make_user("plantdirector_a", Role.PLANT_DIRECTOR, site=site_a))[1] > 0
    with time_machine.travel(NOW + oversight.FIGURES_FOR + timedelta(minutes=1), tick=False):
        fresh, computed = summary_of(manager)
    assert computed and "as of 12:06 UTC" in fresh
    assert "1 PROD deployment succeeded in 30 days" in fresh
