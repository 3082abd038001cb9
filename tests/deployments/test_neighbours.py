"""The RFC page's other open changes touching the same items (issue 20 item 4): the database leaves out
the impacts that cannot share an item, the comparison stays exact and case-blind, and the page shows
at most ten per site with the count of the rest."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deployments import conflicts
from releases.models import Impact
from tests import factories
from tests.conftest import client_for
from workflow.views import NEIGHBOURS_SHOWN

pytestmark = pytest.mark.django_db


def _rfc(people, site, version, lines, modules=("Scanning",)):
    return factories.rfc(
        people["dev"],
        site,
        version=version,
        impacts=[{"site": site, "lines": list(lines), "modules": list(modules)}],
    )


def test_only_changes_sharing_an_item_are_read(people, site_a):
    ours = _rfc(people, site_a, "1.0.1", ["Line 2"])
    same = _rfc(people, site_a, "1.0.2", ["line 2"], ["Other"])  # another spelling: the same line
    module = _rfc(people, site_a, "1.0.3", ["Line 7"], ["SCANNING"])
    _rfc(people, site_a, "1.0.4", ["Line 20"], ["Weighing"])  # "Line 2" as text, not as an item
    _rfc(people, site_a, "1.0.5", ["Line 9"], ["Other"])
    with CaptureQueriesContext(connection) as ctx:
        found = conflicts.neighbours(ours, ours.impacts.all())
    assert sorted(n["rfc"].number for n in found[site_a.pk]) == sorted([same.number, module.number])
    shared = {n["rfc"].number: n["shared"] for n in found[site_a.pk]}
    assert shared[same.number] == ["production line Line 2"] and shared[module.number] == ["module Scanning"]
    # The impacts query names the items: the database leaves out those naming none of them.
    impacts_sql = next(
        q["sql"] for q in ctx.captured_queries if Impact._meta.db_table in q["sql"].split("FROM")[1]
    )
    assert "LIKE" in impacts_sql.upper()


def test_a_name_beyond_ascii_is_still_found(people, site_a):
    ours = _rfc(people, site_a, "1.0.1", ["Linie Süd"], ["Wägen"])
    theirs = _rfc(people, site_a, "1.0.2", ["linie süd"], ["Other"])
    found = conflicts.neighbours(ours, ours.impacts.all())
    assert [n["rfc"].number for n in found[site_a.pk]] == [theirs.number]


def test_the_page_shows_ten_per_site_and_counts_the_rest(people, site_a):
    ours = _rfc(people, site_a, "1.0.1", ["Line 2"])
    release = ours.release
    others = [
        factories.rfc(
            people["dev"],
            site_a,
            release=release,
            impacts=[{"site": site_a, "lines": ["Line 2"], "modules": ["Other"]}],
        )
        for _ in range(NEIGHBOURS_SHOWN + 3)
    ]
    more: dict[int, int] = {}
    found = conflicts.neighbours(ours, ours.impacts.all(), limit=NEIGHBOURS_SHOWN, left_out=more)
    assert [n["rfc"].number for n in found[site_a.pk]] == sorted(o.number for o in others)[:NEIGHBOURS_SHOWN]
    assert more == {site_a.pk: 3}
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[ours.uuid])).content.decode()
    listed = page.split('data-testid="neighbours"')[1].split("</ul>")[0]
    assert listed.count("<li>") == NEIGHBOURS_SHOWN + 1 and "and 3 more open changes" in listed


def _sharing(people, site, release, lines, modules=("Other",), interfaces=()):
    return factories.rfc(
        people["dev"],
        site,
        release=release,
        impacts=[
            {"site": site, "lines": list(lines), "modules": list(modules), "interfaces": list(interfaces)}
        ],
    )


def _mixed(people, site):
    """Ours names a line, a module beyond ASCII and an interface; the others spell them every way."""
    ours = factories.rfc(
        people["dev"],
        site,
        version="1.0.1",
        impacts=[{"site": site, "lines": ["Line 2"], "modules": ["Wägen"], "interfaces": ["ERP"]}],
    )
    release = ours.release
    sharing = [
        _sharing(people, site, release, ["LINE 2"]),
        _sharing(people, site, release, ["line 2", "Linie Süd"]),  # beyond ASCII, sharing the line
        _sharing(people, site, release, ["Line 9"], ["WÄGEN"]),  # shares only the module beyond ASCII
        _sharing(people, site, release, ["Line 9"], ["Scanning"], ["erp"]),
        _sharing(people, site, release, ["Line 3"], ["wägen", "Scanning"]),
    ]
    for lines, modules, interfaces in (
        (["Line  2"], ["Other"], []),  # another spacing: another line
        (["Line 20"], ["Wägen 2"], ["ERP 2"]),  # the names as text, not as items
        (["Linie Süd"], ["Wiegen"], []),  # beyond ASCII, sharing nothing
    ):
        _sharing(people, site, release, lines, modules, interfaces)
    return ours, sharing


@pytest.mark.parametrize("limit", [None, 1, 2, 4, 5, 10])
def test_mixed_spellings_are_found_and_counted_alike(people, site_a, limit):
    ours, sharing = _mixed(people, site_a)
    more: dict[int, int] = {}
    found = conflicts.neighbours(ours, ours.impacts.all(), limit=limit, left_out=more)
    expected = sorted(o.number for o in sharing)
    shown = expected if limit is None else expected[:limit]
    assert [n["rfc"].number for n in found[site_a.pk]] == shown
    assert more == ({site_a.pk: len(expected) - len(shown)} if len(shown) < len(expected) else {})
    shared = {n["rfc"].number: n["shared"] for n in found[site_a.pk]}
    if limit is None:
        assert shared[sharing[2].number] == ["module Wägen"]
        assert shared[sharing[3].number] == ["interface ERP"]


def test_the_database_and_python_agree(people, site_a):
    if connection.vendor != "postgresql":
        pytest.skip("the comparison in SQL is PostgreSQL's")
    ours, _ = _mixed(people, site_a)
    impact = ours.impacts.get()
    keys = {site_a.pk: conflicts._keys(impact.lines, impact.modules, impact.interfaces)}
    others = Impact.objects.filter(site_id=site_a.pk).exclude(rfc=ours)
    for limit in (None, 1, 3, 10):
        here, there = {}, {}
        assert conflicts._matching_here(others, keys, limit, here) == conflicts._matching_in_database(
            others, keys, limit, there
        )
        assert here == there


def test_the_page_counts_the_rest_with_spellings_beyond_ascii(people, site_a):
    ours, sharing = _mixed(people, site_a)
    release = ours.release
    sharing += [_sharing(people, site_a, release, ["Line 2", "Linie Süd"]) for _ in range(NEIGHBOURS_SHOWN)]
    page = client_for(people["dev"]).get(reverse("releases:detail", args=[ours.uuid])).content.decode()
    listed = page.split('data-testid="neighbours"')[1].split("</ul>")[0]
    more = len(sharing) - NEIGHBOURS_SHOWN
    assert listed.count("<li>") == NEIGHBOURS_SHOWN + 1 and f"and {more} more open changes" in listed


@pytest.mark.parametrize(
    "language, shares, booked, state",
    [("en-US,en;q=0.9", "shares", "booked", "Draft"), ("de-DE,de;q=0.9", "teilt", "gebucht", "Entwurf")],
)
def test_a_neighbour_row_reads_as_before_escaped_and_translated(
    people, site_a, language, shares, booked, state
):
    """Each row: the site, a link to the other RFC, its title (escaped), its state and what it shares
    and when it is booked, in the reader's language."""
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2026, 12, 10, 9, 0, tzinfo=UTC), tick=False):
        ours = _rfc(people, site_a, "1.0.1", ["Line <2> & co"])
        theirs = factories.rfc(
            people["dev"],
            site_a,
            release=ours.release,
            title='Labels "fast" <b>now</b>',
            impacts=[{"site": site_a, "lines": ["line <2> & CO"], "modules": ["Other"]}],
        )
        factories.booking(theirs, site_a, people["releasemgr"], tier="UAT", hours_ahead=2)
        page = client_for(people["dev"]).get(
            reverse("releases:detail", args=[ours.uuid]), HTTP_ACCEPT_LANGUAGE=language
        )
    listed = page.content.decode().split('data-testid="neighbours"')[1].split("</ul>")[0]
    zone = site_a.zone
    at = datetime(2026, 12, 10, 11, 0, tzinfo=UTC).astimezone(zone)
    label = "production line" if shares == "shares" else "produktionslinie"
    assert (
        f'<li><strong>{site_a.code}</strong>: <a href="/rfcs/{theirs.uuid}/">{theirs.number}</a> '
        "Labels &quot;fast&quot; &lt;b&gt;now&lt;/b&gt; "
        f'<span class="badge state-draft">{state}</span> — '
        f"{shares} {label} Line &lt;2&gt; &amp; co; {booked} UAT {at:%a %d %b %H:%M %Z}</li>"
    ) in listed
