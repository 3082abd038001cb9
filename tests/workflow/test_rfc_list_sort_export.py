"""The RFC list (issue 17 item 3, first part): sortable columns and a CSV export of the filtered
list, both through the same FilterSet as the API; a bad sort is refused the same way on both."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from tests import factories
from tests.conftest import api_client_for, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(people, site_a):
    titles = ["Beta scanner", "Gamma press", "Alpha printer"]
    return [
        factories.rfc(people["dev"], site_a, version=f"1.0.{n}", title=title)
        for n, title in enumerate(titles, 1)
    ]


def numbers(response) -> list[str]:
    html = response.content.decode()
    return [
        line.split("<strong>")[1].split("</strong>")[0] for line in html.split('data-testid="rfc-row"')[1:]
    ]


def test_columns_sort_the_page_and_the_api_alike(people, three):
    client, api = client_for(people["dev"]), api_client_for(people["dev"])
    url = reverse("releases:list")
    newest_first = [r.number for r in reversed(three)]
    assert numbers(client.get(url)) == newest_first
    assert numbers(client.get(url, {"sort": "number"})) == sorted(newest_first)
    by_title = numbers(client.get(url, {"sort": "-title"}))
    assert by_title == [three[1].number, three[0].number, three[2].number]  # Gamma, Beta, Alpha
    listed = api.get("/api/v1/rfcs/", {"sort": "-title"}).json()["results"]
    assert [r["number"] for r in listed] == by_title
    page = client.get(url, {"sort": "number"}).content.decode()
    assert 'aria-sort="ascending"><a href="?sort=-number">Number' in page


def test_a_bad_sort_is_refused_on_the_page_and_in_the_api(people, three):
    page = client_for(people["dev"]).get(reverse("releases:list"), {"sort": "password"})
    assert page.status_code == 400 and 'data-testid="filter-errors"' in page.content.decode()
    assert api_client_for(people["dev"]).get("/api/v1/rfcs/", {"sort": "password"}).status_code == 400


def test_the_export_has_the_filtered_rows_and_no_formula(people, site_b, three):
    factories.rfc(people["dev"], site_b, version="1.0.9", title="Elsewhere")
    formula = factories.rfc(
        people["dev"], three[0].impacts.get().site, version="1.0.8", title="=cmd|' /C calc'!A0"
    )
    response = client_for(people["dev"]).get(
        reverse("releases:list"), {"site": "PLA", "sort": "number", "format": "csv"}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["number", "title", "state"]
    assert [r[0] for r in rows[1:]] == sorted([r.number for r in three] + [formula.number])
    assert "'=cmd|' /C calc'!A0" in [r[1] for r in rows[1:]]
