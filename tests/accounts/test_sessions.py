"""Session timeouts: idle (SESSION_IDLE_MINUTES) and absolute (SESSION_ABSOLUTE_HOURS), read through
core.clock; an expired session is signed out, audited and sent to the sign-in page (htmx: HX-Redirect);
API tokens are not sessions and are unaffected."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from audit.models import AuditEvent
from core import clock
from tests.conftest import PASSWORD, api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _timeouts(settings):
    settings.SESSION_IDLE_MINUTES = 15
    settings.SESSION_ABSOLUTE_HOURS = 8


@pytest.fixture
def frozen():
    with time_machine.travel(clock.now(), tick=False) as traveller:
        yield traveller


def signed_in(username: str = "dev") -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def expired_events():
    return list(AuditEvent.objects.filter(action="accounts.session.expired").order_by("seq"))


def test_idle_timeout(cast, frozen):
    client = signed_in()
    frozen.shift(timedelta(minutes=14))
    assert client.get("/rfcs/").status_code == 200  # activity moves the idle clock on
    frozen.shift(timedelta(minutes=14))
    assert client.get("/rfcs/").status_code == 200
    frozen.shift(timedelta(minutes=15))
    response = client.get("/rfcs/?page=1")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/rfcs/%3Fpage%3D1"
    assert "_auth_user_id" not in client.session
    [event] = expired_events()
    assert event.actor_name == "dev" and event.after["reason"] == "idle"
    assert AuditEvent.objects.filter(action="accounts.logged_out", actor_name="dev").exists()
    login_page = client.get(response["Location"])
    assert "signed out after 15 minutes without activity" in login_page.content.decode()


def test_absolute_timeout_even_with_activity(cast, frozen):
    client = signed_in()
    for _ in range(8 * 6 - 1):  # a request every 10 minutes for 7 h 50 min
        frozen.shift(timedelta(minutes=10))
        assert client.get("/").status_code == 200
    frozen.shift(timedelta(minutes=10))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    [event] = expired_events()
    assert event.after["reason"] == "absolute"
    assert "a session lasts at most 8 hours" in client.get(response["Location"]).content.decode()


def test_a_new_sign_in_starts_new_clocks(cast, frozen):
    client = signed_in()
    frozen.shift(timedelta(hours=7, minutes=55))
    client = signed_in()
    frozen.shift(timedelta(minutes=10))
    assert client.get("/").status_code == 200


def test_htmx_gets_hx_redirect_not_a_login_fragment(cast, frozen):
    client = signed_in("itmanager")
    frozen.shift(timedelta(minutes=16))
    response = client.get(
        "/approvals/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/approvals/?x=1",
    )
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Redirect"] == "/accounts/login/?next=/approvals/%3Fx%3D1"
    assert expired_events()[0].after["reason"] == "idle"


def test_polling_is_not_activity(cast, frozen):
    """A page left open that refreshes itself (the approvals queue every 30 s) does not keep the
    session alive; the poll after the idle time gets the redirect."""
    client = signed_in("itmanager")
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_X_PORTAL_POLL": "1"}
    for _ in range(14):
        frozen.shift(timedelta(minutes=1))
        assert client.get("/approvals/", **headers).status_code == 200
    frozen.shift(timedelta(minutes=1))
    assert "HX-Redirect" in client.get("/approvals/", **headers)


def test_api_tokens_are_not_affected(cast, frozen):
    api = api_client_for(cast["dev"])
    frozen.shift(timedelta(hours=30))
    assert api.get("/api/v1/sites/").status_code == 200
    assert not expired_events()


def test_a_session_used_on_the_api_ends_there_too_without_a_redirect(cast, frozen):
    client = signed_in()
    assert client.get("/api/v1/sites/").status_code == 200
    frozen.shift(timedelta(minutes=20))
    response = client.get("/api/v1/sites/")
    assert response.status_code in (401, 403) and response.json()["code"]
    assert expired_events()[0].after["reason"] == "idle"


def test_timeouts_off(cast, frozen, settings):
    settings.SESSION_IDLE_MINUTES = 0
    settings.SESSION_ABSOLUTE_HOURS = 0
    client = signed_in()
    frozen.shift(timedelta(hours=7))
    assert client.get("/").status_code == 200
