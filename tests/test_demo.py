"""`manage.py demo` (DESIGN.md contract): users per role, two sites, releases, RFCs in several states."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from audit.services import verify
from changecontrol import access
from changecontrol.roles import Role
from environments.models import Environment, Site
from releases.models import Release, Rfc

pytestmark = pytest.mark.django_db

CONTRACT_USERS = {
    "dev": Role.DEVELOPER, "tester": Role.KEY_USER, "itmanager": Role.IT_MANAGER,
    "opsmanager": Role.OPERATIONS_MANAGER, "cio": Role.CIO, "plantdirector": Role.PLANT_DIRECTOR,
    "releasemgr": Role.RELEASE_MANAGER, "auditor": Role.AUDITOR, "admin": Role.ADMIN,
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
    assert sites == [("BER", "Europe/Berlin"), ("CHI", "America/Chicago")]
    assert env_count == 6
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
