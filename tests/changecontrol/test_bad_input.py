"""Bad input is a 400 with the standard refusal, never a 500: a NUL character (PostgreSQL stores none),
a date outside the years anyone means (9999-12-31 plus a day overflows), garbage, and bodies no parser
reads, on every page and API endpoint that takes them. The whole suite also runs on PostgreSQL in CI,
where the NUL character was a 500; the `postgres` test below insists on it there."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from approvals.models import Approval
from releases.models import Evidence
from tests import factories
from tests.conftest import PASSWORD, api_client_for

pytestmark = pytest.mark.django_db

BAD_DAYS = ["9999-12-31", "0001-01-01", "2026-13-45", "99999-01-01", "garbage", "1899-12-31", "3000-01-01"]
BAD_MOMENTS = [
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T09:00:00+00:00",
    "0001-01-01T09:00:00+00:00",
    "2026-13-45T09:00:00+00:00",
    "99999-01-01T09:00:00+00:00",
    "garbage",
]
CHECK = "/api/v1/windows/check/?environment={env}&duration=60&start={value}"
NEXT = "/api/v1/windows/next/?environment={env}&duration=60&after={value}"

# (URL, user) — every GET that takes a date, in pages and the API.
DATE_GETS = [
    *[(f"/audit/?start={day}", "auditor") for day in BAD_DAYS],
    *[(f"/audit/?end={day}", "auditor") for day in BAD_DAYS],
    *[(f"/audit/export.csv?start={day}", "auditor") for day in BAD_DAYS],
    *[(f"/audit/export.jsonl?end={day}", "auditor") for day in BAD_DAYS],
    *[(f"/api/v1/audit/?start={day}", "auditor") for day in BAD_DAYS],
    *[(f"/api/v1/audit/?end={day}", "auditor") for day in BAD_DAYS],
    *[(f"/environments/calendar/?date={day}", "dev") for day in BAD_DAYS],
    *[(f"/environments/calendar/?view=month&date={day}", "dev") for day in BAD_DAYS],
    *[(f"/environments/calendar/PLA/?view=week&date={day}", "dev") for day in BAD_DAYS],
    *[(f"/environments/calendar/PLA/?view=month&date={day}", "dev") for day in BAD_DAYS],
    *[(CHECK.format(env="{env}", value=moment.replace("+", "%2B")), "dev") for moment in BAD_MOMENTS],
    *[(NEXT.format(env="{env}", value=moment.replace("+", "%2B")), "dev") for moment in BAD_MOMENTS],
]

# Every filter and path converter, with a NUL character (raw in a query value, %00 in the path).
NUL_GETS = [
    ("/audit/?actor=%00", "auditor"),
    ("/audit/?text=a%00b&start=2026-01-01", "auditor"),
    ("/audit/export.csv?object=%00", "auditor"),
    ("/api/v1/audit/?actor=%00", "auditor"),
    ("/api/v1/audit/?action=%00", "auditor"),
    ("/api/v1/audit/%00/", "auditor"),
    ("/api/v1/deployments/?state=%00", "releasemgr"),
    ("/api/v1/deployments/?rfc=%00", "releasemgr"),
    ("/api/v1/deployments/%00/", "releasemgr"),
    ("/api/v1/sites/%00/", "dev"),
    ("/api/v1/sites/?code=%00", "dev"),
    ("/api/v1/environments/%00/", "dev"),
    ("/api/v1/environments/?site=%00", "dev"),
    ("/api/v1/environments/?tier=%00", "dev"),
    ("/api/v1/releases/?product=%00", "dev"),
    ("/api/v1/releases/%00/", "dev"),
    ("/api/v1/rfcs/?q=%00", "dev"),
    ("/api/v1/rfcs/?state=%00", "dev"),
    ("/api/v1/rfcs/%00/", "dev"),
    ("/api/v1/rfcs/{rfc}/gates/?stage=%00", "dev"),
    ("/api/v1/approvals/?all=%00", "itmanager"),
    ("/api/v1/approvals/%00/", "itmanager"),
    ("/api/v1/windows/check/?environment={env}&duration=60&start=2026-12-01T09:00:00%2B01:00%00", "dev"),
    ("/api/v1/windows/next/?environment=%00&duration=60&after=2026-12-01T09:00:00%2B01:00", "dev"),
    ("/api/v1/%00", "dev"),
    ("/environments/%00/PROD/", "dev"),
    ("/environments/PLA/%00/", "dev"),
    ("/environments/PLA/PROD/edit/?x=%00", "admin"),
    ("/environments/calendar/%00/", "dev"),
    ("/environments/calendar/%00.ics", "dev"),
    ("/environments/calendar/?view=%00", "dev"),
    ("/environments/calendar/feed/?token=%00", None),
    ("/rfcs/?q=%00", "dev"),
    ("/rfcs/?site=%00", "dev"),
    ("/rfcs/new/?release=%00", "dev"),
    ("/rfcs/new/classify/?title=%00", "dev"),
    ("/rfcs/{rfc}/?tab=%00", "dev"),
    ("/rfcs/%00/", "dev"),
    ("/approvals/?x=%00", "itmanager"),
    ("/approvals/link/%00/", None),
    ("/accounts/login/?next=%00", None),
    ("/healthz?x=%00", None),
    ("/%00", None),
]


@pytest.fixture
def world(people, site_a):
    people["admin"].is_superuser = True
    people["admin"].save()
    rfc = factories.rfc(people["dev"], site_a)
    return {
        "people": people,
        "rfc": rfc,
        "env": site_a.environments.get(tier="PROD").pk,
    }


def _client(world, username: str | None, api: bool = False):
    if username is None:
        return Client(raise_request_exception=False)
    if api:
        client = api_client_for(world["people"][username])
        client.raise_request_exception = False
        return client
    client = Client(raise_request_exception=False)
    client.force_login(world["people"][username])
    return client


def assert_refused(response, api: bool) -> dict | str:
    """A 400 with the standard refusal: the JSON body under /api/, an HTML page naming the problem
    elsewhere; never a traceback."""
    assert response.status_code == 400, (response.status_code, response.content[:300])
    text = response.content.decode()
    assert "Traceback" not in text and "Something went wrong" not in text
    if api:
        assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
        body = response.json()
        assert isinstance(body.get("detail"), str) and body["detail"], body
        assert isinstance(body.get("code"), str) and body["code"], body
        return body
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    assert "Bad request" in text or 'role="alert"' in text, text[:500]
    return text


@pytest.mark.parametrize(("url", "user"), DATE_GETS + NUL_GETS, ids=lambda value: str(value))
def test_bad_query_or_path_is_a_400(world, url, user):
    api = url.startswith("/api/")
    url = url.format(env=world["env"], rfc=world["rfc"].uuid)
    assert_refused(_client(world, user, api=api).get(url), api)


def test_the_refusal_names_the_field_and_the_years(world):
    api = _client(world, "dev", api=True)
    body = assert_refused(api.get("/api/v1/deployments/?state=%00"), api=True)
    assert body == {
        "detail": "state: Null characters are not allowed.",
        "code": "invalid",
        "fields": {"state": ["Null characters are not allowed."]},
    }
    check = api.get(CHECK.format(env=world["env"], value="9999-12-31T09:00:00%2B00:00"))
    assert assert_refused(check, api=True)["fields"] == {"start": ["Give a date in the years 1900–2999."]}
    page = _client(world, "dev").get("/environments/calendar/?date=9999-12-31")
    assert "date: give a date in the years 1900–2999." in assert_refused(page, api=False)
    # The edges of the range are dates people mean.
    assert _client(world, "dev").get("/environments/calendar/?date=2999-12-31&view=month").status_code == 200
    assert _client(world, "dev").get("/environments/calendar/?date=1900-01-01").status_code == 200
    ok = api.get(NEXT.format(env=world["env"], value="2999-12-01T09:00:00%2B00:00"))
    assert ok.status_code == 200, ok.content


def test_nul_in_headers_cookies_and_bodies_is_a_400(world):
    rfc = world["rfc"]
    api = _client(world, "dev", api=True)
    release = str(rfc.release.uuid)
    # JSON bodies: a NUL escaped in a value, in a key, in a nested list; and JSON no parser reads.
    for payload in (
        {
            "title": "Printer\u0000",
            "description": "d",
            "release": release,
            "impacts": [],
            "rollback_plan": "r",
        },
        {"title\u0000": "x"},
        {"impacts": [{"site": "PLA", "lines": ["L\u0000"]}]},
        ["\u0000"],
    ):
        response = api.post("/api/v1/rfcs/", json.dumps(payload), content_type="application/json")
        assert_refused(response, api=True)
    for raw in (b"{", b'{"title": "\x00"}', b"\xff\xfe", b'{"a": 1}}'):
        response = api.post("/api/v1/rfcs/", raw, content_type="application/json")
        body = assert_refused(response, api=True)
        assert body["code"] in ("parse_error", "invalid"), body
    patched = api.patch(f"/api/v1/rfcs/{rfc.uuid}/", {"title": "a\x00b"}, format="json")
    assert_refused(patched, api=True)
    # A header or a cookie: the token and the session are looked up in the database.
    anonymous = Client(raise_request_exception=False)
    assert_refused(anonymous.get("/api/v1/rfcs/", HTTP_AUTHORIZATION="Token abc\x00def"), api=True)
    anonymous.cookies["sessionid"] = "abcdefgh\x00ijk"
    assert_refused(anonymous.get("/rfcs/"), api=False)
    # Form fields, url-encoded and multipart, on pages and the API; an uploaded file's name too.
    page = _client(world, "dev")
    assert_refused(page.post("/rfcs/new/", {"title": "a\x00b", "description": "d"}), api=False)
    assert_refused(page.post(f"/rfcs/{rfc.uuid}/do/withdraw/", {"reason": "\x00"}), api=False)
    assert_refused(
        page.post(
            f"/rfcs/{rfc.uuid}/edit/",
            "title=a%00b",
            content_type="application/x-www-form-urlencoded",
        ),
        api=False,
    )
    # A file name with NUL: Django's multipart parser already drops what follows it; nothing stores NUL.
    named = page.post(
        f"/rfcs/{rfc.uuid}/evidence/", {"kind": "screenshot", "file": factories.png("a\x00.png")}
    )
    assert named.status_code in (302, 400)
    assert all("\x00" not in name for name in Evidence.objects.values_list("original_name", flat=True))
    multipart = api.post(f"/api/v1/rfcs/{rfc.uuid}/evidence/", {"kind": "scr\x00", "file": factories.png()})
    assert_refused(multipart, api=True)
    # A multipart body no parser reads.
    broken = api.post(
        f"/api/v1/rfcs/{rfc.uuid}/evidence/",
        b"--x\r\nnonsense",
        content_type="multipart/form-data; boundary=",
    )
    assert_refused(broken, api=True)


def test_binary_uploads_keep_their_nul_bytes(world):
    """The guard reads form fields, never an uploaded file's contents: a PNG is full of NUL bytes."""
    rfc = world["rfc"]
    assert b"\x00" in factories.PNG
    response = _client(world, "dev").post(
        f"/rfcs/{rfc.uuid}/evidence/", {"kind": "screenshot", "file": factories.png(), "note": "UAT run"}
    )
    assert response.status_code == 302, response.content[:500]
    assert Evidence.objects.filter(rfc=rfc).count() == 1
    api = _client(world, "dev", api=True)
    uploaded = api.post(f"/api/v1/rfcs/{rfc.uuid}/evidence/", {"kind": "screenshot", "file": factories.png()})
    assert uploaded.status_code == 201, uploaded.content
    assert Evidence.objects.filter(rfc=rfc).count() == 2


def test_dates_in_bodies_are_refused_too(world, site_a):
    """The scheduling API, the schedule page and the absence form take times in bodies."""
    people, rfc = world["people"], world["rfc"]
    api = _client(world, "releasemgr", api=True)
    for moment in BAD_MOMENTS:
        response = api.post(
            f"/api/v1/rfcs/{rfc.uuid}/schedule/", {"site": "PLA", "start": moment}, format="json"
        )
        body = assert_refused(response, api=True)
        assert "start" in body.get("fields", {}), body
    approved = factories.sign_chain(
        people, factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.2")
    )
    page = _client(world, "releasemgr")
    for start in ("9999-12-31T09:00", "0001-01-01T00:00", "2026-13-45T09:00"):
        response = page.post(
            f"/rfcs/{approved.uuid}/schedule/", {"site": "PLA", "duration": 60, "start": start}
        )
        assert response.status_code == 400, (start, response.status_code)
        assert "Traceback" not in response.content.decode()
    absences = _client(world, "itmanager")
    for starts_at in ("9999-12-31T09:00", "0001-01-01T00:00", "2026-13-45T09:00", "garbage"):
        response = absences.post(
            "/approvals/absence/",
            {
                "delegate": "itmanager_a",
                "starts_at": starts_at,
                "ends_at": "2026-12-02T09:00",
                "password": PASSWORD,
            },
        )
        assert response.status_code == 400, (starts_at, response.status_code)
    assert not Approval.objects.filter(rfc=rfc).exists()  # nothing half-written along the way


@pytest.mark.postgres
def test_the_reproductions_on_postgresql(world):
    """Where NUL was a 500: PostgreSQL refuses it in text and JSON, so nothing may reach a query."""
    for url, user in [
        ("/audit/?actor=%00", "auditor"),
        ("/api/v1/deployments/?state=%00", "releasemgr"),
        ("/api/v1/sites/%00/", "dev"),
        ("/environments/%00/PROD/", "dev"),
        ("/environments/PLA/%00/", "dev"),
        (CHECK.format(env=world["env"], value="9999-12-31T23:59:59-12:00"), "dev"),
        (NEXT.format(env=world["env"], value="0001-01-01T00:00:00%2B14:00"), "dev"),
        ("/environments/calendar/?date=9999-12-31", "dev"),
        ("/api/v1/audit/?start=0001-01-01", "auditor"),
    ]:
        api = url.startswith("/api/")
        assert_refused(_client(world, user, api=api).get(url), api)


class _Unreadable:
    """A request body that must not be read: the refusal comes from its Content-Length alone."""

    def read(self, *args):
        raise AssertionError("the body of an over-limit request was read")

    readline = read


@pytest.mark.parametrize("path", ["/api/v1/releases/", "/rfcs/new/", "/accounts/login/"])
def test_a_body_declared_over_the_limit_is_413_before_it_is_read(path):
    """FAULTS 13: a 2 GB upload is refused on its Content-Length, before any byte is read or spooled
    to a temp file (the answer speaks JSON under /api/, the error page elsewhere)."""
    from changecontrol.middleware import body_limit

    response = Client().generic(
        "POST",
        path,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(2 * 1024**3),
        **{"wsgi.input": _Unreadable()},
    )
    assert body_limit() < 2 * 1024**3
    assert response.status_code == 413
    if path.startswith("/api/"):
        assert response.json()["code"] == "too_large"
