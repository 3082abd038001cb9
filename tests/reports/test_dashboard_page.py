"""The dashboard page (issue 17 item 1): its figures, a table behind every chart, each figure linking
to the RFC list of the RFCs it counts (the same FilterSet as the API), a constant number of queries,
and refusals with a sentence instead of a 500."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.errors import RuleViolation
from releases.models import GateRefusal, Rfc
from tests import factories
from tests.conftest import api_client_for, client_for
from tests.reports.history import NOW, many
from workflow import services as wf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


NOVEMBER = "since=2026-11-01&until=2026-11-30"


class Charts(HTMLParser):
    """Each card section: its canvases and its tables."""

    def __init__(self):
        super().__init__()
        self.sections, self.depth = [], 0
        self.links = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append({"testid": attrs.get("data-testid"), "canvas": [], "tables": 0})
        elif tag == "canvas" and self.sections:
            self.sections[-1]["canvas"].append(attrs.get("data-chart"))
        elif tag == "table" and self.sections:
            self.sections[-1]["tables"] += 1


def page(user, query=NOVEMBER):
    return client_for(user).get(f"{reverse('dashboard')}?{query}")


def test_the_figures_of_a_site_in_its_own_zone(history, people):
    response = page(people["releasemgr"], f"site=PLA&{NOVEMBER}")
    assert response.status_code == 200
    html = response.content.decode()
    figure = lambda name: re.search(  # noqa: E731
        rf'data-testid="figure-{name}">.*?figure-value">([^<]*)<', html, re.S
    ).group(1)
    assert figure("failure-rate") == "67%"
    assert figure("success-rate") == "33%"
    assert figure("rollback-rate") == "33%"
    assert figure("emergency-ratio") == "20%"
    assert figure("adherence") == "50%"
    assert figure("restore") == "30 min"
    assert figure("lead-time") == "3.0 days"
    assert figure("frequency") == "0.2 a week"
    assert "Days in Europe/Berlin" in html


def test_every_chart_has_its_table(history, people):
    parser = Charts()
    parser.feed(page(people["releasemgr"]).content.decode())
    charted = [s for s in parser.sections if s["canvas"]]
    assert {c for s in charted for c in s["canvas"]} == {
        "deployments",
        "adherence",
        "approvals",
        "gates",
        "sites",
    }
    assert all(s["tables"] == 1 for s in charted), charted


def test_each_figure_links_to_the_rfcs_it_counts(history, people):
    user = people["releasemgr"]
    html = page(user, f"site=PLA&{NOVEMBER}").content.decode()
    href = (
        re.search(r'data-testid="figure-rollback-rate"><a href="([^"]+)"', html)
        .group(1)
        .replace("&amp;", "&")
    )
    listing = client_for(user).get(href)
    assert listing.status_code == 200
    body = listing.content.decode()
    assert history["rolled"].number in body and history["ok"].number not in body
    assert "The RFCs that rolled back in PROD, 1 Nov 2026 – 30 Nov 2026 at PLA" in body
    # The API answers the same question with the same FilterSet.
    query = href.split("?", 1)[1]
    api = api_client_for(user).get(f"/api/v1/rfcs/?{query}")
    assert api.status_code == 200
    assert [row["number"] for row in api.json()["results"]] == [history["rolled"].number]
    gate = re.search(r'<a href="([^"]+metric=gate%3AUAT[^"]+)"', html).group(1).replace("&amp;", "&")
    assert history["missed"].number in client_for(user).get(gate).content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "metric=nonsense",
        "metric=gate%3A",
        "metric=approval%3A1%3Apope",
        "metric=late&since=2026-13-01",
        "metric=late&since=2026-11-10&until=2026-11-01",
        "metric=late%00",
    ],
)
def test_a_figure_the_dashboard_does_not_show_is_refused(people, query):
    user = people["releasemgr"]
    assert client_for(user).get(f"{reverse('releases:list')}?{query}").status_code == 400
    assert api_client_for(user).get(f"/api/v1/rfcs/?{query}").status_code == 400


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=2026-11-31", "Give the date as YYYY-MM-DD"),
        ("since=2026-11-10&until=2026-11-01", "The period ends before it starts."),
        ("site=NOPE", "Choose one of your sites."),
        ("since=%00%0d%0a", ""),
        ("since=1900-01-01", "within ten years"),
    ],
)
def test_a_bad_period_or_site_is_a_sentence_not_a_500(people, query, message):
    response = page(people["releasemgr"], query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_user_sees_only_the_figures_of_their_sites(history, people, site_a):
    from core.roles import Role
    from tests.conftest import make_user

    only_a = make_user("plantmgr_a", Role.OPERATIONS_MANAGER, site=site_a)
    html = page(only_a).content.decode()
    assert "PLB" not in html
    assert page(only_a, "site=PLB").status_code == 400


def test_queries_per_dashboard_page_do_not_grow_with_the_rfcs(people, site_a, site_b):
    user = people["releasemgr"]
    client = client_for(user)
    url = f"{reverse('dashboard')}?since=2026-11-01&until=2027-02-28"

    def count():
        with CaptureQueriesContext(connection) as seen:
            assert client.get(url).status_code == 200
        return len(seen)

    many(people, site_a, 10)
    count()  # warm the session and the role cache
    few = count()
    many(people, site_b, 1000)
    assert count() == few


def test_a_refused_submission_is_counted_by_gate(people, site_a):
    item = factories.rfc(people["dev"], site_a)  # no UAT sign-off yet
    with pytest.raises(RuleViolation):
        wf.submit(people["dev"], item)
    refused = list(GateRefusal.objects.filter(rfc=item).values_list("stage", "gate"))
    assert ("submit", "UAT sign-off") in refused
    assert Rfc.objects.get(pk=item.pk).state == "draft"  # the refusal itself changed nothing else
