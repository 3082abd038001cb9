"""The RFC list page and `GET /api/v1/rfcs/` filter with one FilterSet (DESIGN.md): for the same
parameters they show the same RFCs in the same order, and refuse the same bad input — a 400 with the
error shape in the API, an error message on the page — never a 500."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from core.roles import Role
from environments.models import Environment, ProductVersion
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import api_client_for, client_for, make_user

API = "/api/v1/rfcs/"
ROW = re.compile(r'<tr data-testid="rfc-row">\s*<td[^>]*><a href="[^"]*"><strong>(RFC-[0-9-]+)</strong>')


@pytest.fixture
def rfcs(cast, site_a, site_b):
    """A handful of RFCs that differ in every filtered column. Plant B's PROD runs the ERP interface
    beside its MES, so the ERP release is a patch there (R5 compares a product with itself)."""
    ProductVersion.objects.create(
        environment=Environment.objects.get(site=site_b, tier="PROD"),
        product="ERP-interface",
        version="1.0.0",
    )
    other = make_user("Dev2", Role.DEVELOPER, last_name="Printer")
    mes = factories.release(cast["dev"], "1.0.1", product="MES")
    erp = factories.release(cast["dev"], "1.0.2", product="ERP-interface")
    major = factories.release(cast["dev"], "2.0.0", product="MES")
    made = {
        "label": factories.rfc(cast["dev"], site_a, release=mes, title="Label timeout"),
        "scanner": factories.rfc(
            cast["dev"],
            site_b,
            release=erp,
            title="Scanner driver",
            description="Scanners on line 1 drop 50% of reads_ at night.",
            impacts=[{"site": site_b, "lines": ["Line 1"]}],
        ),
        "both": factories.rfc(
            other,
            site_a,
            release=mes,
            title="Shift report",
            description="The shift report misses the ERP booking.",
            impacts=[{"site": site_a, "lines": ["Line 3"]}, {"site": site_b, "lines": ["Line 3"]}],
        ),
        "major": factories.rfc(
            other,
            site_a,
            release=major,
            title="New MES screens",
            estimated_downtime_minutes=60,
            retraining_note="Half a day",
        ),
        "closed": factories.rfc(cast["releasemgr"], site_b, release=erp, title="Old fix"),
    }
    Rfc.objects.filter(pk=made["scanner"].pk).update(state=RfcState.SUBMITTED)
    Rfc.objects.filter(pk=made["both"].pk).update(state=RfcState.DEPLOYING)
    Rfc.objects.filter(pk=made["closed"].pk).update(state=RfcState.CLOSED)
    return made


GOOD = [
    {},
    {"q": "scanner"},
    {"q": "SCANNER"},
    {"q": "erp"},  # the product of two, the description of a third
    {"q": "erp-INTERFACE"},
    {"q": "misses the erp"},  # description only
    {"q": "RFC-2026-000"},
    {"q": "50%"},  # LIKE wildcards are text
    {"q": "reads_"},
    {"q": "_"},
    {"q": "  label  "},
    {"q": "x" * 200},
    {"q": "Überwachung ✓"},
    {"q": "'; DROP TABLE releases_rfc; --"},
    {"state": "open"},
    {"state": "draft"},
    {"state": "submitted"},
    {"state": "closed"},
    {"state": "deploying"},
    {"state": ""},
    {"state": ["closed", "open"]},  # the last value counts, on both
    {"site": "PLA"},
    {"site": "PLB"},
    {"site": "pla"},
    {"site": "NOPE"},
    {"change_class": "major"},
    {"change_class": "patch"},
    {"author": "dev"},
    {"author": "DEV2"},
    {"author": "dev2 "},
    {"author": "Printer"},  # a last name is not a username
    {"author": "de"},  # nor is a prefix
    {"mine": "on"},
    {"mine": "true"},
    {"mine": ""},
    {"state": "open", "site": "PLB"},
    {"state": "open", "author": "dev2", "site": "PLA", "change_class": "patch"},
    {"q": "MES", "change_class": "major", "state": "draft"},
    {"q": "line", "site": "PLB", "mine": "on"},
    {"unknown": "parameter", "page_size": "3"},
]

BAD = [
    {"q": "\x00"},
    {"q": "printer\x00"},
    {"author": "a\x00b"},
    {"site": "\x00"},
    {"state": "\x00"},
    {"state": "nonsense"},
    {"state": "OPEN"},
    {"change_class": "huge"},
    {"q": "x" * 201},
    {"q": "x" * 100_000},
    {"author": "x" * 151},
    {"site": "x" * 10_000},
    {"state": "open", "q": "\x00"},
    {"state": "nonsense", "site": "PLA", "q": "label"},
]


def _page(client, params):
    response = client.get(reverse("releases:list"), params)
    return response, ROW.findall(response.content.decode())


def _api(api, params):
    response = api.get(API, {**params, "page_size": 200} if "page_size" not in params else params)
    return response


def _numbers(rfcs, *keys):
    return {rfcs[key].number for key in keys}


def test_the_unified_meaning(cast, rfcs):
    """What each parameter means, once, for both (the page and the API used to disagree)."""
    page, api = client_for(cast["dev"]), api_client_for(cast["dev"])
    expected = [
        ({"q": "ERP"}, {"scanner", "closed", "both"}),  # product or description
        ({"q": "misses"}, {"both"}),  # the description (the page did not search it)
        ({"q": "interface"}, {"scanner", "closed"}),  # the product (the API did not search it)
        ({"author": "DEV2"}, {"both", "major"}),  # case-insensitive (the API was exact)
        ({"author": "Printer"}, set()),  # the username only (the page matched names too)
        ({"state": "open"}, {"label", "scanner", "both", "major"}),  # the API refused "open"
    ]
    for params, keys in expected:
        _, shown = _page(page, params)
        listed = _api(api, params)
        assert listed.status_code == 200, (params, listed.content)
        assert set(shown) == _numbers(rfcs, *keys), params
        assert {row["number"] for row in listed.json()["results"]} == _numbers(rfcs, *keys), params


@pytest.mark.parametrize("who", ["dev", "itmanager_a", "releasemgr"])
def test_page_and_api_show_the_same_rfcs(cast, rfcs, who):
    user = cast[who]
    page, api = client_for(user), api_client_for(user)
    for params in GOOD:
        response, shown = _page(page, params)
        assert response.status_code == 200, (params, response.status_code)
        listed = _api(api, params)
        assert listed.status_code == 200, (params, listed.content)
        numbers = [row["number"] for row in listed.json()["results"]]
        if "page_size" in params:  # the API's page is smaller than the page's: its first rows
            assert shown[: len(numbers)] == numbers, params
        else:
            assert shown == numbers, params  # same rows, same order


def test_itmanager_of_one_site_sees_only_that_site(cast, rfcs):
    page, api = client_for(cast["itmanager_a"]), api_client_for(cast["itmanager_a"])
    _, shown = _page(page, {})
    assert set(shown) == _numbers(rfcs, "label", "both", "major")
    assert {row["number"] for row in _api(api, {}).json()["results"]} == set(shown)


def test_bad_input_is_a_400_in_the_api_and_a_message_on_the_page(cast, rfcs):
    page, api = client_for(cast["dev"]), api_client_for(cast["dev"])
    for params in BAD:
        listed = _api(api, params)
        assert listed.status_code == 400, (params, listed.status_code)
        body = listed.json()
        assert isinstance(body["detail"], str) and body["detail"] and body["code"] == "invalid", body
        assert set(body["fields"]) <= {"q", "state", "site", "author", "change_class"}, body
        response, shown = _page(page, params)
        assert response.status_code == 400, (params, response.status_code)
        text = response.content.decode()
        if any("\x00" in value for value in params.values()):
            # A NUL character never reaches the page: the input guard answers with the 400 page.
            assert "Null characters are not allowed." in text and 'role="alert"' in text, params
        else:
            assert 'data-testid="filter-errors"' in text and 'role="alert"' in text, params
        assert shown == [], params  # no unfiltered list passed off as the answer


def test_the_page_keeps_its_filter_bar(cast, rfcs):
    text = client_for(cast["dev"]).get(reverse("releases:list"), {"state": "open", "q": "label"})
    body = text.content.decode()
    assert '<option value="open" selected>Open</option>' in body
    assert 'name="q"' in body and 'value="label"' in body and 'type="search"' in body
    assert (
        '<option value="">Any state</option>' in body
        and '<option value="" selected>Any class</option>' in body
    )
    assert 'type="checkbox" name="mine"' in body
    assert "aria-describedby" not in body.split('class="filters"')[1].split("</form>")[0]


# --- The audit trail: the page and GET /api/v1/audit/ share AuditEventFilterSet ----------------------
@pytest.fixture
def trail_events(db):
    from datetime import UTC, datetime

    import time_machine

    from audit.services import record

    cases = [
        (1, "releases.rfc.submit", "bob", "releases.rfc", "RFC-2026-0042", "PLB", "Ready for the chain"),
        (2, "releases.rfc.reject", "carol", "releases.rfc", "RFC-2026-0042", "PLB", "Undo script missing"),
        (2, "approvals.signature.approved", "Dave", "approvals.approval", "17", "PLA", ""),
        (3, "releases.rfc.submit", "bob", "releases.rfc", "RFC-2026-0043", "PLA", "50% of the labels_"),
        (4, "deployments.deployment.started", "", "deployments.deployment", "RFC-2026-0043", "PLA", ""),
        (5, "releases.rfc.created", "alice", "releases.rfc", "RFC-2026-0044", "", "first draft"),
    ]
    for day, action, actor, object_type, object_id, site, reason in cases:
        with time_machine.travel(datetime(2026, 3, day, 12, tzinfo=UTC), tick=False):
            record(
                action,
                actor_name=actor,
                object_type=object_type,
                object_id=object_id,
                site_code=site,
                reason=reason,
            )


AUDIT_GOOD = [
    {},
    {"actor": "bob"},
    {"actor_name": "bob"},
    {"actor": "BOB"},
    {"action": "releases.rfc"},
    {"action": "releases.rfc.submit"},
    {"action": "approvals."},
    {"object": "RFC-2026-0042"},
    {"object_id": "RFC-2026-0043"},
    {"object_type": "releases.rfc"},
    {"site": "PLB"},
    {"site_code": "PLA"},
    {"text": "UNDO"},
    {"text": "50%"},
    {"text": "labels_"},
    {"text": "RFC-2026-0042"},
    {"start": "2026-03-02"},
    {"end": "2026-03-02"},
    {"start": "2026-03-02", "end": "2026-03-03"},
    {"start": "2026-3-2"},
    {"start": "20260302"},
    {"start": "2030-01-01"},
    {"end": "2000-01-01"},
    {"end": "2999-12-31"},  # the last and first days the portal takes
    {"start": "1900-01-01"},
    {"action": "releases.", "site": "PLA", "start": "2026-03-02"},
    {"actor": "bob", "actor_name": "carol"},  # both spellings given: both apply
    {"unknown": "x"},
]
AUDIT_BAD = [
    {"start": "2026-13-45"},
    {"end": "9999-12-31"},  # no date anyone means: refused, not searched (it overflowed once)
    {"start": "0001-01-01"},
    {"end": "yesterday"},
    {"start": "03/02/2026"},
    {"actor": "\x00"},
    {"action": "releases\x00"},
    {"object": "x" * 201},
    {"site_code": "x" * 10_000},
    {"text": "\x00"},
    {"start": "2026-03-02", "actor": "bob\x00"},
    {"object_type": "x" * 10_000},
]


def _trail_page(client, params):
    response = client.get(reverse("audit:list"), params)
    events = response.context["events"] if response.context and "events" in response.context else []
    return response, [event.seq for event in events]


def test_audit_page_and_api_show_the_same_events(cast, trail_events):
    page, api = client_for(cast["auditor"]), api_client_for(cast["auditor"])
    nonempty = 0
    for params in AUDIT_GOOD:
        # The API first: the page records its own reading, which the API would then list.
        listed = api.get("/api/v1/audit/", params)
        assert listed.status_code == 200, (params, listed.content)
        response, shown = _trail_page(page, params)
        assert response.status_code == 200, (params, response.status_code)
        assert shown == [row["seq"] for row in listed.json()["results"]], params
        nonempty += bool(shown)
    assert nonempty >= 15


def test_audit_bad_input_is_a_400_in_the_api_and_a_message_on_the_page(cast, trail_events):
    page, api = client_for(cast["auditor"]), api_client_for(cast["auditor"])
    for params in AUDIT_BAD:
        listed = api.get("/api/v1/audit/", params)
        assert listed.status_code == 400, (params, listed.status_code)
        assert listed.json()["code"] == "invalid" and listed.json()["detail"], params
        response, shown = _trail_page(page, params)
        assert response.status_code == 400 and shown == [], params
        if any("\x00" in value for value in params.values()):  # answered by the input guard's 400 page
            assert "Null characters are not allowed." in response.content.decode(), params
        else:
            assert 'class="errorbox" role="alert"' in response.content.decode(), params
        exported = page.get(reverse("audit:export_csv"), params)
        assert exported.status_code == 400, params
    # Even a refused reading is on record, with what was asked; a NUL character never gets that far.
    from audit.models import AuditEvent

    read = AuditEvent.objects.filter(action="audit.trail.read").latest("seq")
    assert read.after["filters"] == {"object_type": "x" * 200}  # cut to the longest column


# --- Deployments: GET /api/v1/deployments/ filters with DeploymentFilterSet ----------------------------
def test_deployment_filters(cast, site_a, site_b):
    from datetime import timedelta

    from core import clock
    from deployments.models import Deployment
    from environments.models import Environment

    release = factories.release(cast["dev"], "1.0.1")
    one = factories.rfc(cast["dev"], site_a, release=release)
    two = factories.rfc(cast["dev"], site_b, release=release, impacts=[{"site": site_b, "lines": ["L"]}])
    now = clock.now()

    def deploy(rfc, site, tier, state):
        return Deployment.objects.create(
            rfc=rfc,
            environment=Environment.objects.get(site=site, tier=tier),
            scheduled_start=now + timedelta(hours=1),
            scheduled_end=now + timedelta(hours=2),
            duration_minutes=60,
            state=state,
            scheduled_by=cast["releasemgr"],
        )

    a_dev = deploy(one, site_a, "DEV", "succeeded")
    a_prod = deploy(one, site_a, "PROD", "scheduled")
    b_uat = deploy(two, site_b, "UAT", "running")
    api = api_client_for(cast["releasemgr"])

    def uuids(**params):
        response = api.get("/api/v1/deployments/", params)
        assert response.status_code == 200, (params, response.content)
        return {row["uuid"] for row in response.json()["results"]}

    every = {str(d.uuid) for d in (a_dev, a_prod, b_uat)}
    assert uuids() == every
    assert uuids(rfc=one.number) == {str(a_dev.uuid), str(a_prod.uuid)}
    assert uuids(rfc=str(two.uuid)) == {str(b_uat.uuid)}
    assert uuids(rfc="not-an-rfc") == set()
    assert uuids(state="running") == {str(b_uat.uuid)}
    assert uuids(state="nonsense") == set()  # as before: an unknown state matches nothing
    assert uuids(environment=str(a_prod.environment_id)) == {str(a_prod.uuid)}
    assert uuids(environment="abc") == every  # as before: not a number, no filter
    assert uuids(environment="²") == every  # a digit that int() refuses was a 500
    assert uuids(environment="9" * 40) == set()  # beyond any id
    assert uuids(site="PLB") == {str(b_uat.uuid)}
    assert uuids(site="PLA", state="scheduled") == {str(a_prod.uuid)}
    for bad in ({"state": "\x00"}, {"rfc": "RFC\x00"}, {"site": "x" * 21}, {"environment": "1\x00"}):
        response = api.get("/api/v1/deployments/", bad)
        assert response.status_code == 400 and response.json()["code"] == "invalid", bad
    outsider = api_client_for(cast["itmanager_a"])
    assert {row["uuid"] for row in outsider.get("/api/v1/deployments/").json()["results"]} == {
        str(a_dev.uuid),
        str(a_prod.uuid),
    }
