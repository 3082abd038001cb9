"""Parallel run: the pipeline's named reports and planning queries on a scratch copy of UAT before
and one after the release's migration, the differences shown and stored, bound to the artifact and
feeding the waivable "Parallel run equal" gate where UAT's pipeline declares it (issue 19 item 4)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from deployments import checks
from deployments.models import CheckKind, CheckRun
from environments.models import Environment
from environments.pipelines import pipeline_problems
from plant.plantdb import database_of
from releases import gates, services
from tests import factories
from tests.conftest import api_client_for, client_for

pytestmark = pytest.mark.django_db

PARALLEL = [
    {"name": "Daily output by line", "query": "SELECT line, sum(good_parts) FROM cycles GROUP BY line"},
    {"name": "Open orders", "query": "SELECT count(*) FROM cycles WHERE good_parts = 0"},
]
# A "planning change": Line 2's scrap is now booked as good parts, and Line 3's history is archived.
CHANGE = "UPDATE cycles SET good_parts = good_parts + 5 WHERE line = 'Line 2'; DELETE FROM cycles WHERE line = 'Line 3';"


@pytest.fixture
def uat(site_a) -> Environment:
    env = Environment.objects.get(site=site_a, tier="UAT")
    env.pipeline = {**env.pipeline, "parallel": PARALLEL}
    env.save(update_fields=["pipeline"])
    with closing(sqlite3.connect(database_of(env).target)) as conn, conn:
        conn.execute("CREATE TABLE cycles (id INTEGER PRIMARY KEY, line TEXT, good_parts INTEGER)")
        conn.executemany(
            "INSERT INTO cycles (line, good_parts) VALUES (?, ?)",
            [("Line 1", 100), ("Line 2", 90), ("Line 3", 70)],
        )
    return env


def release_with(cast, version, sql):
    return services.create_release(
        cast["dev"],
        product="MES",
        version=version,
        migration_sql=sql,
        artifact=SimpleUploadedFile(f"mes-{version}.json", version.encode()),
    )


def gate_of(rfc):
    return next(g for g in gates.evaluate(rfc, "schedule") if g.name == "Parallel run equal")


def test_a_difference_is_shown_row_by_row_and_fails_the_gate(cast, site_a, uat):
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CHANGE))
    run = checks.request_check(cast["dev"], rfc, CheckKind.PARALLEL, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    daily, orders = run.result["queries"]
    assert daily["name"] == "Daily output by line" and daily["differences"] == 2
    assert daily["only_before"] == [["Line 3", 70]] and daily["only_after"] == []
    assert daily["changed"] == [{"before": [["Line 2", 90]], "after": [["Line 2", 95]]}]
    assert orders["differences"] == 0
    assert run.result["unequal"] == ["Daily output by line"]
    assert "Daily output by line (2 difference(s))" in run.summary
    gate = gate_of(rfc)
    assert not gate.passed and "Daily output by line" in gate.reason
    page = client_for(cast["dev"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-testid="parallel-report"' in page and "<code>Line 2 · 95</code>" in page
    [listed] = api_client_for(cast["dev"]).get(f"/api/v1/rfcs/{rfc.uuid}/checks/").json()
    assert listed["kind"] == "parallel" and listed["result"]["queries"][0]["changed"]


def test_equal_results_pass_and_a_new_artifact_needs_a_new_run(cast, site_a, uat):
    from workflow import services as wf

    clean = "CREATE TABLE IF NOT EXISTS plan_notes (id INTEGER PRIMARY KEY);"
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", clean))
    assert checks.run_check(checks.request_check(cast["dev"], rfc, CheckKind.PARALLEL, site_a).pk) == "passed"
    assert gate_of(rfc).passed
    wf.update_rfc(cast["dev"], rfc, release=release_with(cast, "1.0.2", clean))
    rfc.refresh_from_db()
    gate = gate_of(rfc)
    assert not gate.passed and "has no run for artifact" in gate.reason


def test_the_gate_passes_where_no_parallel_run_is_declared_and_is_waivable(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CHANGE))
    gate = gate_of(rfc)
    assert gate.passed and "not configured for" in gate.reason
    assert gates.waivable("Parallel run equal") and gates.waivable("Messages reconciled")


def test_a_query_that_fails_is_a_difference_not_a_crash(cast, site_a, uat):
    Environment.objects.filter(pk=uat.pk).update(
        pipeline={**uat.pipeline, "parallel": [{"name": "Renamed", "query": "SELECT line FROM cycles_v2"}]}
    )
    rfc = factories.rfc(
        cast["dev"], site_a, release=release_with(cast, "1.0.1", "CREATE TABLE cycles_v2 (line TEXT);")
    )
    run = checks.request_check(cast["dev"], rfc, CheckKind.PARALLEL, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert run.result["queries"][0]["only_before"] == [["error: no such table: cycles_v2"]]


@pytest.mark.parametrize(
    "parallel",
    [[], {"name": "x", "query": "SELECT 1"}, [{"name": "x"}], [{"name": "", "query": "SELECT 1"}]],
)
def test_a_bad_parallel_spec_is_refused_saying_what_to_add(parallel):
    [problem] = pipeline_problems({"parallel": parallel}, "UAT")
    assert problem.startswith("parallel: a list of named queries")
    assert 'write "parallel": [{"name": "Daily output by line", "query": "SELECT' in problem


def test_two_queries_of_one_name_are_refused():
    assert pipeline_problems({"parallel": [{"name": "a", "query": "SELECT 1"}] * 2}, "UAT") == [
        "parallel: each query has a name of its own."
    ]


def test_the_run_is_audited_with_its_artifact(cast, site_a, uat):
    from audit.models import AuditEvent

    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", CHANGE))
    checks.run_check(checks.request_check(cast["dev"], rfc, CheckKind.PARALLEL, site_a).pk)
    requested = AuditEvent.objects.get(action="releases.check.requested")
    failed = AuditEvent.objects.get(action="releases.check.failed")
    assert requested.after["kind"] == "parallel" and failed.after["unequal"] == ["Daily output by line"]
    assert (
        failed.after["artifact_sha256"]
        == rfc.release.artifact_sha256
        == CheckRun.objects.get().artifact_sha256
    )
