"""The approval queue a page at a time (issue 20 item 4): 25 rows per page, the same queries whether
3 or 30 approvals wait, and a pager that keeps the query and marks the current page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import Approval, ApprovalState
from releases.models import Release, Rfc
from tests import factories
from tests.changecontrol.test_query_counts import _bulk_rfcs
from tests.conftest import client_for
from workflow.approval_views import QUEUE_PAGE, page_links

pytestmark = pytest.mark.django_db


def _waiting(people, site_a, site_b, count: int) -> None:
    """RFCs until `count` approvals wait for an IT manager (one RFC in three waits, see _bulk_rfcs)."""
    release = Release.objects.filter(version="1.0.1").first() or factories.release(people["dev"], "1.0.1")
    grow = {"authors": [people["dev"]], "release": release, "site_a": site_a, "site_b": site_b}
    while Approval.objects.filter(state=ApprovalState.PENDING).count() < count:
        _bulk_rfcs(1, **grow)
    assert Approval.objects.filter(state=ApprovalState.PENDING).count() == count


def _queries(client, url: str) -> tuple[int, str]:
    client.get(url)  # warm (content types, permissions)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_the_queue_costs_the_same_queries_with_3_or_30_waiting(people, site_a, site_b):
    client = client_for(people["itmanager"])
    url = reverse("approvals:queue")
    _waiting(people, site_a, site_b, 3)
    few, page = _queries(client, url)
    assert page.count('data-testid="queue-row"') == 3 and 'data-testid="queue-pager"' not in page
    _waiting(people, site_a, site_b, 30)
    many, page = _queries(client, url)
    assert page.count('data-testid="queue-row"') == QUEUE_PAGE == 25
    assert few == many
    last, page2 = _queries(client, url + "?page=2")
    assert last == many and page2.count('data-testid="queue-row"') == 5


def test_the_pages_together_show_every_approval_once_oldest_first(people, site_a, site_b):
    _waiting(people, site_a, site_b, 30)
    client = client_for(people["itmanager"])
    shown = []
    for number in (1, 2):
        page = client.get(reverse("approvals:queue"), {"page": number}).content.decode()
        shown += re.findall(r'href="/approvals/(\d+)/"', page)
    pending = Approval.objects.filter(state=ApprovalState.PENDING).order_by("pk").values_list("pk", flat=True)
    assert [int(pk) for pk in shown] == list(pending)
    # A page past the end shows the last page, not an error.
    assert client.get(reverse("approvals:queue"), {"page": 99}).content.decode().count("queue-row") == 5


def test_the_pager_keeps_the_query_and_marks_the_current_page(people, site_a, site_b):
    _waiting(people, site_a, site_b, 30)
    page = (
        client_for(people["itmanager"])
        .get(reverse("approvals:queue"), {"page": 2, "x": "y"})
        .content.decode()
    )
    nav = re.search(
        r'<nav class="pager" aria-label="[^"]+" data-testid="queue-pager">(.*?)</nav>', page, re.S
    )
    assert nav is not None
    assert 'href="?x=y&amp;page=1" rel="prev"' in nav.group(1)
    assert re.search(r'href="\?x=y&amp;page=2" aria-current="page">', nav.group(1))
    assert nav.group(1).count('aria-current="page"') == 1
    assert "26–30 of 30 waiting" in nav.group(1)
    # The htmx refresh asks for the page shown, with the same query.
    assert 'data-hx-get="/approvals/?x=y&amp;page=2&amp;poll=1"' in page
    # The refresh answers the table alone, still paged.
    part = client_for(people["itmanager"]).get(
        reverse("approvals:queue"), {"page": 2, "poll": 1}, headers={"HX-Request": "true"}
    )
    assert part.content.decode().count("queue-row") == 5 and "<html" not in part.content.decode()


def test_page_links_leave_out_the_far_pages():
    from django.core.paginator import Paginator

    paginator = Paginator(range(25 * 12), 25)
    assert page_links(paginator.page(1)) == [1, 2, 3, None, 12]
    assert page_links(paginator.page(6)) == [1, None, 4, 5, 6, 7, 8, None, 12]
    assert page_links(paginator.page(12)) == [1, None, 10, 11, 12]
    assert page_links(Paginator(range(60), 25).page(2)) == [1, 2, 3]


def test_someone_else_s_rfcs_only(people, site_a, site_b):
    """The author never sees their own RFC's approval in their queue (as before the paging)."""
    _waiting(people, site_a, site_b, 3)
    Rfc.objects.update(author=people["itmanager"])
    assert (
        client_for(people["itmanager"]).get(reverse("approvals:queue")).content.decode().count("queue-row")
        == 0
    )
