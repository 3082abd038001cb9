"""The RFC list page and `GET /api/v1/rfcs/` filter with one FilterSet (DESIGN.md): for the same
parameters they show the same RFCs in the same order, and refuse the same bad input — a 400 with the
error shape in the API, an error message on the page — never a 500."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from core.roles import Role
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import api_client_for, client_for, make_user

API = "/api/v1/rfcs/"
ROW = re.compile(r'<tr data-testid="rfc-row">\s*<td[^>]*><a href="[^"]*"><strong>(RFC-[0-9-]+)</strong>')


@pytest.fixture
def rfcs(cast, site_a, site_b):
    """A handful of RFCs that differ in every filtered column."""
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
