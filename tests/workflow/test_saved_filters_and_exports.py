"""The RFC list's saved filters and exports (issue 17 item 3): filters saved per user or shared,
checked by the list's FilterSet, answered the same by the page, the CSV, the XLSX and the API; the
XLSX is formula-safe and holds exactly the rows of the list."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from releases.models import Rfc
from tests import factories
from tests.conftest import api_client_for, client_for
from workflow.models import SavedFilter

pytestmark = pytest.mark.django_db


@pytest.fixture
def rfcs(people, site_a, site_b):
    made = [
        factories.rfc(people["dev"], site_a, version="1.0.1", title='=HYPERLINK("http://x")'),
        factories.rfc(people["dev"], site_a, version="1.0.2", title="Label printer\x01 timeout"),
        factories.rfc(people["dev"], site_b, version="1.0.3", title="Chicago only"),
    ]
    for n in range(4, 9):
        made.append(factories.rfc(people["dev"], site_a, version=f"1.0.{n}", title=f"Plant A change {n}"))
    return made


def listed_numbers(html: str) -> list[str]:
    import re

    return re.findall(
        r'data-testid="rfc-row">\s*<td class="nowrap"><a href="[^"]+"><strong>([^<]+)</strong>', html
    )


def test_export_parity_page_csv_xlsx_and_api(people, rfcs):
    user = people["releasemgr"]
    client = client_for(user)
    query = "site=PLA&sort=title"
    page = listed_numbers(client.get(f"{reverse('releases:list')}?{query}").content.decode())
    assert len(page) == 7
    csv_rows = list(
        csv.reader(
            io.StringIO(
                b"".join(
                    client.get(f"{reverse('releases:list')}?{query}&format=csv").streaming_content
                ).decode()
            )
        )
    )
    response = client.get(f"{reverse('releases:list')}?{query}&format=xlsx")
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="rfcs-' in response["Content-Disposition"]
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book["RFCs"]
    xlsx_rows = [[cell.value or "" for cell in row] for row in sheet.iter_rows()]
    api = api_client_for(user).get(f"/api/v1/rfcs/?{query}&page_size=100").json()["results"]
    assert [r[0] for r in csv_rows[1:]] == [r[0] for r in xlsx_rows[1:]] == page == [r["number"] for r in api]
    assert xlsx_rows[0] == csv_rows[0]
    titles = {row[1] for row in xlsx_rows[1:]}
    # A formula stays text (neutralised like the CSV), and a control character is dropped.
    assert '\'=HYPERLINK("http://x")' in titles
    assert "Label printer timeout" in titles
    assert all(cell.data_type == "s" for row in sheet.iter_rows(min_row=2) for cell in row)


def test_a_user_saves_a_filter_and_opens_it_again(people, rfcs):
    user = people["releasemgr"]
    client = client_for(user)
    response = client.post(
        reverse("releases:save_filter"),
        {"name": "  Plant A,  by title ", "query": "site=PLA&sort=title&page=3&x=1"},
    )
    saved = SavedFilter.objects.get(owner=user)
    assert saved.name == "Plant A, by title" and saved.query == "site=PLA&sort=title" and not saved.shared
    assert response.status_code == 302 and response["Location"].endswith("?site=PLA&sort=title")
    html = client.get(reverse("releases:list")).content.decode()
    assert 'data-testid="saved-filter">Plant A, by title</a>' in html
    # Saving the same name again replaces it.
    client.post(
        reverse("releases:save_filter"), {"name": "Plant A, by title", "query": "site=PLB", "shared": "on"}
    )
    saved.refresh_from_db()
    assert (saved.query, saved.shared) == ("site=PLB", True)
    assert SavedFilter.objects.count() == 1


def test_shared_filters_are_seen_by_everyone_and_deleted_only_by_their_owner(people, rfcs):
    owner, other = people["releasemgr"], people["dev"]
    client_for(owner).post(reverse("releases:save_filter"), {"name": "Mine", "query": "site=PLA"})
    client_for(owner).post(
        reverse("releases:save_filter"), {"name": "Team", "query": "state=draft", "shared": "on"}
    )
    html = client_for(other).get(reverse("releases:list")).content.decode()
    assert ">Team</a>" in html and "shared by Releasemgr" in html and ">Mine</a>" not in html
    team = SavedFilter.objects.get(name="Team")
    assert client_for(other).post(reverse("releases:delete_filter", args=[team.pk])).status_code == 404
    assert SavedFilter.objects.filter(pk=team.pk).exists()
    assert client_for(owner).post(reverse("releases:delete_filter", args=[team.pk])).status_code == 302
    assert not SavedFilter.objects.filter(pk=team.pk).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "query": "site=PLA"}, "Give the filter a name."),
        ({"name": "x" * 81, "query": "site=PLA"}, "at most 80 characters"),
        ({"name": "Nothing", "query": "page=2"}, "nothing to save"),
        ({"name": "Bad state", "query": "state=nonsense"}, "state:"),
        ({"name": "Bad figure", "query": "metric=nope"}, "no such figure"),
        ({"name": "Null\x00byte", "query": "site=PLA"}, ""),  # refused whole by the NUL guard (400)
    ],
)
def test_a_filter_that_cannot_be_saved_says_why_and_saves_nothing(people, data, message):
    client = client_for(people["releasemgr"])
    response = client.post(reverse("releases:save_filter"), data, follow=True)
    assert response.status_code in (200, 400)
    assert message in response.content.decode()
    assert not SavedFilter.objects.exists()
    assert "Traceback" not in response.content.decode()


def test_the_api_lists_creates_and_deletes_saved_filters(people, rfcs):
    owner = api_client_for(people["releasemgr"])
    created = owner.post(
        "/api/v1/rfc-filters/", {"name": "Plant A", "query": "site=PLA", "shared": True}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"] == "releasemgr" and body["api_url"] == "/api/v1/rfcs/?site=PLA"
    numbers = [r["number"] for r in owner.get(body["api_url"] + "&page_size=100").json()["results"]]
    assert len(numbers) == 7
    refused = owner.post("/api/v1/rfc-filters/", {"name": "Bad", "query": "state=nonsense"}, format="json")
    assert refused.status_code == 400
    other = api_client_for(people["dev"])
    assert [f["name"] for f in other.get("/api/v1/rfc-filters/").json()["results"]] == ["Plant A"]
    assert other.delete(f"/api/v1/rfc-filters/{body['id']}/").status_code == 404
    assert owner.delete(f"/api/v1/rfc-filters/{body['id']}/").status_code == 204
    assert not SavedFilter.objects.exists()


def test_the_xlsx_export_of_an_empty_list_has_its_header(people):
    response = client_for(people["releasemgr"]).get(
        f"{reverse('releases:list')}?q=nothing-matches&format=xlsx"
    )
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["RFCs"]
    assert [c.value for c in next(sheet.iter_rows())][0] == "number"
    assert sheet.max_row == 1
    assert Rfc.objects.count() == 0
