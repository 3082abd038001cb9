"""`manage.py demo` (DESIGN.md contract): users per role, two sites, releases, RFCs in several states."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from audit.services import verify
from core.roles import Role
from environments import access
from environments.models import Environment, Site
from releases.models import Release, Rfc

pytestmark = pytest.mark.django_db

CONTRACT_USERS = {
    "dev": Role.DEVELOPER,
    "tester": Role.KEY_USER,
    "itmanager": Role.IT_MANAGER,
    "opsmanager": Role.OPERATIONS_MANAGER,
    "cio": Role.CIO,
    "plantdirector": Role.PLANT_DIRECTOR,
    "releasemgr": Role.RELEASE_MANAGER,
    "auditor": Role.AUDITOR,
    "admin": Role.ADMIN,
}


def _state():
    return (
        sorted(Site.objects.values_list("code", "timezone")),
        Environment.objects.count(),
        sorted(Release.objects.values_list("product", "version")),
        sorted(Rfc.objects.values_list("number", "state", "change_class")),
    )


def test_demo_creates_the_contract_and_is_idempotent(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    call_command("demo", stdout=io.StringIO())
    first = _state()
    call_command("demo", stdout=io.StringIO())
    assert _state() == first

    sites, env_count, releases, rfcs = first
    assert sites == [
        ("BER", "Europe/Berlin"),
        ("CHI", "America/Chicago"),
        ("LBL", "Europe/Warsaw"),
        ("OPEN", "Europe/Berlin"),
    ]
    assert env_count == 11  # LBL runs DEV and PROD only (E1)
    from deployments import promotion
    from releases import gates
    from releases.models import Rfc

    two_tier = Rfc.objects.get(title="Printer queue timeout on the label service")
    assert promotion.proving(two_tier.impacts.get().site_id).tier == "DEV"
    judged = {g.name: g for g in gates.evaluate(two_tier, "schedule")}
    # No SQL: its rollback is rehearsed by restoring DEV's copy, for real, with its RTO.
    assert judged["Rollback rehearsed"].passed, judged["Rollback rehearsed"].reason
    assert judged["Promotion order"].passed and "LBL DEV" in judged["Promotion order"].reason
    assert ("MES", "2.4.0") in releases
    states = {state for _, state, _ in rfcs}
    assert {"draft", "in_approval", "approved"} <= states
    assert {cls for _, _, cls in rfcs} == {"patch", "minor", "major"}
    for username, role in CONTRACT_USERS.items():
        user = authenticate(username=username, password="demo")
        assert user is not None, username
        assert access.has_role(user, role)
    assert verify().ok


def test_demo_password_from_environment(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "plant-secret-7")
    call_command("demo", stdout=io.StringIO())
    assert authenticate(username="dev", password="demo") is None
    assert authenticate(username="dev", password="plant-secret-7") is not None


def test_demo_plant_is_connected_and_the_open_line_takes_prod_any_time(settings):
    """Every demo environment deploys to the demo plant; OPEN's calendar never closes."""
    from datetime import UTC, datetime

    from environments.calendar import check
    from environments.windows import rules_for

    call_command("demo", stdout=io.StringIO())
    prod = Environment.objects.get(site__code="OPEN", tier="PROD")
    assert prod.pipeline["smoke"]["url"] == f"{settings.DEMO_PLANT_URL}/OPEN/PROD/label"
    assert (settings.VAR_DIR / "plant" / "OPEN" / "PROD" / "app" / "release.json").exists()
    friday_night = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # a Friday, at a shift handover elsewhere
    assert check(rules_for(prod), friday_night, 30).allowed
    # Not even a minute closed at midnight: the journeys that book and switch here run at any hour.
    for minute in (49, 55, 59):
        just_before_midnight = datetime(2026, 12, 4, 22, minute, 30, tzinfo=UTC)  # 23:xx:30 in Berlin
        assert check(rules_for(prod), just_before_midnight, 10).allowed, minute
    good, bad = Release.objects.get(version="2.4.1"), Release.objects.get(version="2.4.2")
    assert good.artifact_file and bad.artifact_file and good.artifact_sha256 != bad.artifact_sha256
    assert set(Rfc.objects.filter(impacts__site__code="OPEN").values_list("state", flat=True)) == {"approved"}
