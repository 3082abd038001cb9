"""Feature flags per site (issue 19 item 5): a release declares them; turning one on at an environment is
a standard change — by a release manager, with a reason, inside a window unless the flag is safe,
recorded and audited — switched by the pipeline's `flags` command on the real demo plant and checked by
the smoke test and the business signals; a failed check turns the flag off again: no restore, no data lost.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from core.errors import StateConflict
from deployments import flags
from deployments.models import FlagChange, FlagChangeState
from environments.models import Environment, ProductVersion
from environments.pipelines import pipeline_problems
from releases import flags as release_flags
from tests import factories
from tests.conftest import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
S = FlagChangeState
BERLIN = ZoneInfo("Europe/Berlin")
FLAGS = [
    {"key": "bold_batch_number", "description": "Print the batch number in bold.", "safe": True},
    {"key": "erp_batch_confirmations", "description": "Confirm to the ERP in batches.", "safe": False},
]


@pytest.fixture
def prod(cast, site_a, plant):
    """PROD runs MES 2.4.1, which declares the two flags."""
    factories.release(cast["dev"], version="2.4.1", flags=FLAGS)
    env = Environment.objects.get(site=site_a, tier="PROD")
    ProductVersion.objects.filter(environment=env, product="MES").update(version="2.4.1")
    return Environment.objects.get(pk=env.pk)


@pytest.fixture
def open_calendar():
    """Inside PROD's default window (Tuesday 09:00–11:00 Berlin), whatever the time the suite runs."""
    with time_machine.travel(datetime(2026, 12, 1, 9, 30, tzinfo=BERLIN), tick=True):
        yield


def plant_flags(root, site, tier="PROD") -> dict:
    path = root / site.code / tier / "app" / "flags.json"
    return json.loads(path.read_text()) if path.exists() else {}


def switch(user, env, key, on, reason="Pilot on line 2."):
    change = flags.request(user, env, key, on, reason)
    assert flags.run(change.pk) in (S.SUCCEEDED, S.ROLLED_BACK, S.FAILED)
    change.refresh_from_db()
    return change


def state_of(env, key) -> bool:
    return next(f for f in flags.available(env) if f["key"] == key)["on"]


def test_a_safe_flag_goes_on_and_off_as_a_recorded_standard_change(cast, site_a, plant, prod, open_calendar):
    change = switch(cast["releasemgr"], prod, "bold_batch_number", True)
    assert change.state == S.SUCCEEDED, change.outcome
    assert plant_flags(plant, site_a) == {"bold_batch_number": True} and state_of(prod, "bold_batch_number")
    assert [step["step"] for step in change.journal][:2] == ["turn on", "smoke test"]
    assert AuditEvent.objects.filter(
        action="deployments.flag.requested", actor_id=cast["releasemgr"].pk
    ).exists()
    assert AuditEvent.objects.filter(action="deployments.flag.switched_on").exists()
    # Reversible in one step.
    off = switch(cast["releasemgr"], prod, "bold_batch_number", False, "Operators prefer the old label.")
    assert off.state == S.SUCCEEDED and plant_flags(plant, site_a) == {"bold_batch_number": False}
    assert not state_of(prod, "bold_batch_number")
    assert AuditEvent.objects.filter(action="deployments.flag.switched_off").exists()


def test_a_flag_that_breaks_a_signal_is_turned_off_again_with_nothing_restored(
    cast, site_a, plant, prod, open_calendar
):
    """The rollback of a flag is the flag off: the line's data written meanwhile stays."""
    db = plant / site_a.code / "PROD" / "mes.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO cycles (line, completed_at, good_parts) VALUES ('Line 1', 'x', 100)")
    change = switch(cast["releasemgr"], prod, "erp_batch_confirmations", True)
    assert change.state == S.ROLLED_BACK
    assert change.outcome.startswith("Turned erp_batch_confirmations off again at ")
    assert "business signal breached: ERP confirmations failed — 5 after vs 0 before" in change.outcome
    assert "Nothing was restored: no production data lost." in change.outcome
    assert [s["step"] for s in change.journal][-1] == "turn off again"
    assert plant_flags(plant, site_a) == {"erp_batch_confirmations": False}
    assert not state_of(prod, "erp_batch_confirmations")
    with sqlite3.connect(db) as conn:  # nothing restored: the cycle and the labels printed are all there
        assert conn.execute("SELECT count(*) FROM cycles").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM labels").fetchone()[0] == 5
    event = AuditEvent.objects.get(action="deployments.flag.rolled_back")
    assert "ERP confirmations failed" in event.after["outcome"]


def test_outside_a_window_only_a_safe_flag_switches(cast, site_a, plant, prod):
    """PROD's default calendar: no window at 03:00 on a Sunday."""
    with time_machine.travel(datetime(2026, 12, 6, 3, 0, tzinfo=BERLIN), tick=False):
        with pytest.raises(ValidationError, match="cannot be switched now \\(no deployment window on Sunday"):
            flags.request(cast["releasemgr"], prod, "erp_batch_confirmations", True, "Pilot.")
        assert flags.request(cast["releasemgr"], prod, "bold_batch_number", True, "Pilot.").state == S.QUEUED
    assert FlagChange.objects.count() == 1


def test_who_may_switch_and_what_is_refused(cast, site_a, plant, prod, open_calendar):
    with pytest.raises(PermissionDenied):
        flags.request(cast["dev"], prod, "bold_batch_number", True, "Pilot.")
    for reason in ("", "two\nlines", "x" * 301, "nul\x00"):
        with pytest.raises(ValidationError, match="one line of at most 300"):
            flags.request(cast["releasemgr"], prod, "bold_batch_number", True, reason)
    with pytest.raises(
        ValidationError, match="declares the flag 'no_such_flag'|declares the flag no_such_flag"
    ):
        flags.request(cast["releasemgr"], prod, "no_such_flag", True, "Pilot.")
    with pytest.raises(StateConflict, match="already off"):
        flags.request(cast["releasemgr"], prod, "bold_batch_number", False, "Pilot.")
    flags.request(cast["releasemgr"], prod, "bold_batch_number", True, "Pilot.")
    with pytest.raises(StateConflict, match="already being switched"):
        flags.request(cast["releasemgr"], prod, "bold_batch_number", True, "Again.")
    assert FlagChange.objects.count() == 1


def test_a_flag_arrives_with_its_release_and_needs_a_switch_command(cast, site_a, plant, prod, open_calendar):
    dev = Environment.objects.get(site=site_a, tier="DEV")  # still on MES 1.0.0: the flag is not there yet
    assert flags.available(dev) == []
    with pytest.raises(ValidationError, match="runs no release that declares"):
        flags.request(cast["releasemgr"], dev, "bold_batch_number", True, "Pilot.")
    prod.pipeline = {k: v for k, v in prod.pipeline.items() if k != "flags"}
    prod.save(update_fields=["pipeline"])
    with pytest.raises(ValidationError, match='cannot switch flags: add "flags"'):
        flags.request(cast["releasemgr"], prod, "bold_batch_number", True, "Pilot.")


def test_the_flags_page_switches_a_flag_and_shows_the_history(cast, site_a, plant, prod, open_calendar):
    client = client_for(cast["releasemgr"])
    page = client.get(f"/environments/{site_a.code}/PROD/flags/")
    html = page.content.decode()
    assert page.status_code == 200 and "erp_batch_confirmations" in html and "Turn on" in html
    response = client.post(
        f"/environments/{site_a.code}/PROD/flags/switch/",
        {"key": "bold_batch_number", "state": "on", "reason": "Pilot."},
    )
    assert response.status_code == 302
    change = FlagChange.objects.get()
    flags.run(change.pk)
    html = client.get(f"/environments/{site_a.code}/PROD/flags/").content.decode()
    assert (
        "Turn off" in html
        and "Print the batch number in bold." in html
        and 'data-testid="flag-change"' in html
    )
    refused = client.post(f"/environments/{site_a.code}/PROD/flags/switch/", {"key": "x", "state": "up"})
    assert refused.status_code == 400 and "Choose to turn the flag on or off." in refused.content.decode()
    assert client_for(cast["auditor"]).get(f"/environments/{site_a.code}/PROD/flags/").status_code == 200
    assert (
        "Turn on"
        not in client_for(cast["auditor"]).get(f"/environments/{site_a.code}/PROD/flags/").content.decode()
    )
    denied = client_for(cast["dev"]).post(
        f"/environments/{site_a.code}/PROD/flags/switch/",
        {"key": "bold_batch_number", "state": "off", "reason": "x"},
    )
    assert denied.status_code == 403


@pytest.mark.parametrize(
    "declared, problem",
    [
        ([{"key": "Bad Key"}], "lower-case letters"),
        ([{"key": "ok_flag", "description": "two\nlines"}], "one line of at most 200"),
        ([{"key": "ok_flag"}, {"key": "ok_flag"}], "declared twice"),
        ([{"key": "ok_flag", "safe": "yes"}], "safe is true or false"),
        ("ok_flag", "a list"),
    ],
)
def test_a_release_declaring_a_bad_flag_is_told_why(declared, problem):
    with pytest.raises(ValidationError) as refused:
        release_flags.clean(declared)
    assert problem in " ".join(refused.value.message_dict["flags"])


def test_the_form_text_reads_one_flag_per_line():
    text = "bold_batch_number: Print it bold [safe]\n\nerp_batch_confirmations: Batches of ten"
    parsed = release_flags.parse(text)
    assert parsed == [
        {"key": "bold_batch_number", "description": "Print it bold", "safe": True},
        {"key": "erp_batch_confirmations", "description": "Batches of ten", "safe": False},
    ]
    assert release_flags.parse(release_flags.as_text(parsed)) == parsed


def test_the_api_records_a_releases_flags(cast):
    from tests.conftest import api_client_for

    response = api_client_for(cast["dev"]).post(
        "/api/v1/releases/",
        {
            "product": "MES",
            "version": "3.0.0",
            "artifact_url": "https://artifacts.plant.test/mes-3.zip",
            "artifact_sha256": "a" * 64,
            "flags": [{"key": "new_planner", "description": "The new planning board."}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["flags"] == [
        {"key": "new_planner", "description": "The new planning board.", "safe": False}
    ]
    bad = api_client_for(cast["dev"]).post(
        "/api/v1/releases/",
        {
            "product": "MES",
            "version": "3.0.1",
            "artifact_url": "https://a.test/x",
            "artifact_sha256": "a" * 64,
            "flags": [{"key": "Bad Key"}],
        },
        format="json",
    )
    assert bad.status_code == 400 and "flags" in bad.json()["fields"]


def test_a_pipeline_flag_switch_must_take_the_flag_and_its_state():
    assert (
        pipeline_problems(
            {"flags": {"adapter": "command", "command": ["switch", "{flag}", "{state}"]}}, "DEV"
        )
        == []
    )
    (problem,) = pipeline_problems({"flags": {"adapter": "command", "command": ["switch"]}}, "DEV")
    assert problem.startswith("flags: its command takes the flag as")
    (problem,) = pipeline_problems({"flags": {"adapter": "http", "url": "http://x"}}, "DEV")
    assert "the flag switch is a command adapter" in problem


def test_a_freeze_refuses_a_switch_inside_a_window(cast, site_a, plant, prod, open_calendar):
    """The window rule is the calendar's one rule (calendar.check): a freeze holds for flags too (W4)."""
    from core import clock
    from environments.models import Freeze

    now = clock.now()
    Freeze.objects.create(
        site=site_a, name="Audit week", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1)
    )
    with pytest.raises(ValidationError, match="cannot be switched now \\(.*Audit week"):
        flags.request(cast["releasemgr"], prod, "erp_batch_confirmations", True, "Pilot.")
    assert flags.request(cast["releasemgr"], prod, "bold_batch_number", True, "Pilot.").state == S.QUEUED
