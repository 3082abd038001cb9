"""Business signals (issue 19 item 3; X3, X4, C5): numbers read from the real demo plant — an HTTP probe's
JSON field and an SQL query in its database — judged as PROD readiness (min/max, in a fresh reading) and
compared with their baseline after the apply; a breach rolls back and names the signal. A terminals signal
waits for every terminal to report the new version within its minutes.

The demo release "unconfirmed" prints labels (the smoke test passes) but its ERP confirmations fail: only a
signal catches it.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
import time_machine

from audit.models import AuditEvent
from core import clock
from deployments import engine, readiness
from deployments.models import DeploymentState, StepState
from environments.models import Environment, SignalReading, Terminal
from environments.pipelines import pipeline_problems
from plant import signals
from releases import gates
from tests import factories
from tests.deployments.test_engine import (
    TUESDAY_9,
    app_version,
    artifact_release,
    deploy,
    env_of,
    scheduled_prod,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
S = DeploymentState


def spec(env, name):
    return next(s for s in signals.declared(env) if s["name"] == name)


def fail_confirmations(root, site, tier, count):
    with sqlite3.connect(root / site.code / tier / "mes.sqlite3") as db:
        db.executemany(
            "INSERT INTO confirmations (source, ref, sent_at, status) VALUES ('cycle', ?, "
            "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), 'failed')",
            [(n,) for n in range(count)],
        )


# --- Each signal type against the real demo plant ----------------------------------------------
def test_an_http_signal_reads_a_field_of_the_plants_answer(site_a, plant):
    env = env_of(site_a, "DEV")
    assert signals.read(spec(env, "ERP confirmations failed"), env) == 0
    fail_confirmations(plant, site_a, "DEV", 3)
    assert signals.read(spec(env, "ERP confirmations failed"), env) == 3
    assert signals.read(spec(env, "Cycles per minute"), env) == 0


def test_an_sql_signal_reads_the_first_column_of_its_query(site_a, plant):
    env = env_of(site_a, "PROD")
    assert signals.read(spec(env, "Unconfirmed queue depth"), env) == 0
    fail_confirmations(plant, site_a, "PROD", 2)
    assert signals.read(spec(env, "Unconfirmed queue depth"), env) == 2


def test_a_signal_that_cannot_be_read_says_why():
    with pytest.raises(signals.SignalError, match="GET http://127.0.0.1:9/x"):
        signals.read({"adapter": "http", "name": "x", "url": "http://127.0.0.1:9/x", "field": "a", "max": 1})
    with pytest.raises(signals.SignalError, match="the query failed"):
        signals.read(
            {"adapter": "sql", "name": "x", "database": "sqlite:////nonexistent/db", "query": "SELECT 1"}
        )


# --- After the apply: compared with the baseline, a breach rolls back and names the signal -------
def test_the_unconfirmed_release_passes_the_smoke_test_and_a_signal_rolls_it_back(
    cast, site_a, plant, artifacts
):
    """X3/X4 for business indicators: the smoke test passes; the ERP confirmations fail; the deployment
    rolls back (undo script: the line's data kept) and its outcome names the signal."""
    release = artifact_release(cast["dev"], artifacts["unconfirmed"], "2.4.6")
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.ROLLED_BACK, deployment.outcome
    states = {s.name: s.state for s in deployment.steps.filter(phase="forward")}
    assert states["smoke"] == StepState.SUCCEEDED and states["compare"] == StepState.SUCCEEDED
    assert states["signal_baseline"] == StepState.SUCCEEDED and states["signals"] == StepState.FAILED
    assert deployment.outcome.startswith(
        "Business signal breached: ERP confirmations failed — 5 after vs 0 before"
    )
    assert "Cycles per minute" not in deployment.outcome  # only the breached signal is named
    baseline = deployment.steps.get(name="signal_baseline").result["signals"]
    assert baseline["ERP confirmations failed"] == {"value": 0.0}
    assert app_version(plant, site_a, "DEV") == "2.3.1"
    assert env_of(site_a, "DEV").active_version != "2.4.6"
    event = AuditEvent.objects.get(action="releases.deployment.rolled_back", object_id=deployment.rfc.number)
    assert "ERP confirmations failed" in event.after["outcome"]


def test_the_good_release_keeps_its_signals_and_succeeds(cast, site_a, plant, artifacts):
    release = artifact_release(cast["dev"], artifacts["good"], "2.4.1")
    deployment = deploy(cast, site_a, "DEV", release)
    assert deployment.state == S.SUCCEEDED, deployment.outcome
    judged = {r["name"]: r["ok"] for r in deployment.steps.get(name="signals").result["signals"]}
    assert judged == {"ERP confirmations failed": True, "Cycles per minute": True}


def test_a_signal_unreadable_after_the_apply_rolls_back(cast, site_a, plant, artifacts):
    """Fail closed: a compared signal without a baseline (the probe answered nothing) is a breach."""
    env = env_of(site_a, "DEV")
    env.pipeline["signals"] = [
        {
            "adapter": "http",
            "name": "Orders per minute",
            "url": "http://127.0.0.1:9/s",
            "field": "o",
            "good": "higher",
        }
    ]
    env.save(update_fields=["pipeline"])
    deployment = deploy(cast, site_a, "DEV", artifact_release(cast["dev"], artifacts["good"], "2.4.1"))
    assert deployment.state == S.ROLLED_BACK
    assert (
        "Business signal breached: Orders per minute — no baseline: GET http://127.0.0.1:9/s"
        in deployment.outcome
    )


def test_tolerance_and_allowance_set_the_limit():
    lower = {"good": "lower", "tolerance": 0.2, "allowance": 5}
    assert signals.limit_of(lower, 100) == 120 and signals.limit_of(lower, 10) == 15
    higher = {"good": "higher", "tolerance": 0.5}
    assert signals.limit_of(higher, 40) == 20 and signals.limit_of({"good": "higher"}, 10) == 8


# --- Before PROD: readiness from a fresh reading ------------------------------------------------
def test_readiness_needs_a_fresh_reading_and_names_the_signal_out_of_range(people, site_a, plant, artifacts):
    release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
    rfc, _deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
    prod = env_of(site_a, "PROD")
    gate = readiness.business_signals_ready(rfc)
    assert not gate.passed and "no reading in the last 15 minutes" in gate.reason  # fail closed
    reading = signals.take_reading(prod, "request")
    assert reading.ok and reading.readings == [
        {
            "name": "Unconfirmed queue depth",
            "adapter": "sql",
            "ok": True,
            "text": "0 (at most 50)",
            "value": 0.0,
        }
    ]
    gate = readiness.business_signals_ready(rfc)
    assert gate.passed and "Unconfirmed queue depth 0 (at most 50)" in gate.reason
    fail_confirmations(plant, site_a, "PROD", 51)
    signals.take_reading(prod, "request")
    gate = readiness.business_signals_ready(rfc)
    assert not gate.passed and "Unconfirmed queue depth: 51 is above its maximum 50" in gate.reason
    with time_machine.travel(clock.now() + timedelta(minutes=16), tick=False):
        assert "no reading" in readiness.business_signals_ready(rfc).reason  # too old to trust


def test_the_worker_reads_prod_again_before_it_touches_it_and_refuses(people, site_a, plant, artifacts):
    release = artifact_release(people["dev"], artifacts["good"], "2.4.1")
    rfc, deployment = scheduled_prod(people, site_a, release, TUESDAY_9)
    fail_confirmations(plant, site_a, "PROD", 60)
    with time_machine.travel(TUESDAY_9 + timedelta(seconds=5), tick=False):
        assert engine.run(deployment.pk, owner="w") == S.FAILED
    deployment.refresh_from_db()
    assert deployment.outcome.startswith("Refused before touching PROD: Business signals ready — ")
    assert "60 is above its maximum 50" in deployment.outcome and not deployment.steps.exists()
    assert SignalReading.objects.get(environment=env_of(site_a, "PROD"), trigger="deployment").ok is False
    assert app_version(plant, site_a, "PROD") == "2.3.1"


def test_without_readiness_signals_the_gate_passes_and_says_so(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    gate = readiness.business_signals_ready(rfc)
    assert gate.passed and "No readiness signals" in gate.reason
    assert readiness.SIGNALS in {g.name for g in gates.evaluate(rfc, "deploy")}
    assert readiness.SIGNALS not in {g.name for g in gates.evaluate(rfc, "schedule")}
    assert not gates.waivable(readiness.SIGNALS)  # a plant out of range is not evidence to waive


def test_beat_reads_prod_and_forgets_old_readings(site_a, plant):
    prod = env_of(site_a, "PROD")
    old = SignalReading.objects.create(environment=prod, ok=True, trigger="schedule")
    SignalReading.objects.filter(pk=old.pk).update(taken_at=clock.now() - timedelta(days=3))
    assert signals.read_due() == 1
    assert list(SignalReading.objects.values_list("environment__tier", "trigger", "ok")) == [
        ("PROD", "schedule", True)
    ]


# --- Terminals: all on the new version within N minutes ---------------------------------------
def deployed_with_a_terminal_behind(cast, site_a, artifacts):
    env = env_of(site_a, "DEV")
    env.pipeline["signals"] = [
        {"adapter": "terminals", "name": "All terminals updated", "within_minutes": 20}
    ]
    env.save(update_fields=["pipeline"])
    Terminal.objects.create(environment=env, name="Line 1 HMI", product="MES", version="1.0.0")
    start = clock.now()
    with time_machine.travel(start, tick=False):
        deployment = deploy(cast, site_a, "DEV", artifact_release(cast["dev"], artifacts["good"], "2.4.1"))
    return env, start, deployment


def test_a_deployment_waits_for_the_terminals_and_succeeds_when_they_report(cast, site_a, plant, artifacts):
    env, start, deployment = deployed_with_a_terminal_behind(cast, site_a, artifacts)
    assert deployment.state == S.VERIFYING and deployment.next_action_at == start + timedelta(seconds=60)
    assert not deployment.steps.filter(name="signals").exists()
    Terminal.objects.filter(environment=env).update(version="2.4.1", reported_at=start)
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        assert engine.run(deployment.pk, owner="w") == S.SUCCEEDED
    result = deployment.steps.get(name="signals").result["signals"]
    assert result == [
        {
            "name": "All terminals updated",
            "adapter": "terminals",
            "ok": True,
            "text": "every terminal runs 2.4.1",
            "value": 0.0,
        }
    ]


def test_terminals_not_updated_in_time_roll_the_deployment_back(cast, site_a, plant, artifacts):
    env, start, deployment = deployed_with_a_terminal_behind(cast, site_a, artifacts)
    with time_machine.travel(start + timedelta(minutes=21), tick=False):
        assert engine.run(deployment.pk, owner="w") == S.ROLLED_BACK
    deployment.refresh_from_db()
    assert (
        "Business signal breached: All terminals updated — 1 terminal(s) not on 2.4.1 after 20 minutes: "
        "Line 1 HMI (MES 1.0.0)" in deployment.outcome
    )
    assert app_version(plant, site_a, "DEV") == "2.3.1"


def test_terminals_readiness_names_the_terminals_behind(site_a):
    env = Environment.objects.get(site=site_a, tier="PROD")
    Terminal.objects.create(environment=env, name="Packing PC", product="MES", version="0.9.0")
    env.pipeline = {**env.pipeline, "signals": [{"adapter": "terminals", "name": "T"}]}
    (reading,) = signals.readiness(env)
    assert (
        not reading.ok and reading.text == "1 terminal(s) not on the active version: Packing PC (MES 0.9.0)"
    )


# --- What a pipeline may declare ---------------------------------------------------------------
@pytest.mark.parametrize(
    "signal, problem",
    [
        (
            {"adapter": "sql", "name": "x", "database": "sqlite:///a", "query": "SELECT 1"},
            "say how to judge it",
        ),
        ({"adapter": "http", "name": "x", "url": "ftp://a", "field": "f", "max": 1}, "http:// or https://"),
        ({"adapter": "sql", "name": "x", "database": "mysql://a", "query": "q", "max": 1}, "sqlite:///path"),
        (
            {"adapter": "sql", "name": "x", "database": "sqlite:///a", "query": "q", "good": "up"},
            '"higher" or "lower"',
        ),
        (
            {"adapter": "sql", "name": "x", "database": "sqlite:///a", "query": "q", "max": "5"},
            "'max' is a number",
        ),
        ({"adapter": "terminals", "name": "t", "within_minutes": -1}, "from 0 to 1440"),
        ({"adapter": "smtp", "name": "x"}, "unknown signal adapter 'smtp'"),
        ({"adapter": "terminals"}, "needs 'name'"),
        ({"adapter": "terminals", "name": "t", "extra": 1}, "does not know 'extra'"),
        ("queue", "a signal is a JSON object"),
    ],
)
def test_a_pipeline_declaring_a_bad_signal_is_told_what_to_change(signal, problem):
    problems = pipeline_problems({"signals": [signal]}, "DEV")
    assert len(problems) >= 1 and problems[0].startswith("signals #1: ") and problem in " ".join(problems)
