"""The RFC page's other open changes touching the same items (issue 20 item 4): the database leaves out
the impacts that cannot share an item, the comparison stays exact and case-blind, and the page shows
at most ten per site with the count of the rest."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

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
    # The items are found through their index, not by reading the impacts' lists.
    assert not [q for q in ctx.captured_queries if '"releases_impact"' in q["sql"]]
    assert len(ctx.captured_queries) == 2  # the matching items with their RFCs, their bookings
    # Each RFC carries what the page shows, as its own row has it, with no further query.
    with CaptureQueriesContext(connection) as later:
        shown = {
            (n["rfc"].pk, n["rfc"].uuid, n["rfc"].number, n["rfc"].title, n["rfc"].state)
            for n in found[site_a.pk]
        }
    assert not later.captured_queries
    assert shown == {(r.pk, r.uuid, r.number, r.title, r.state) for r in (same, module)}
    assert all(isinstance(n["rfc"].uuid, uuid.UUID) for n in found[site_a.pk])


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


def test_the_items_follow_every_write_of_an_impact(people, site_a, site_b):
    """The item rows are written with the impact, however it is written: created with the RFC
    (bulk), edited through the service (renamed items no longer match, new ones do), saved one by one,
    and gone with the RFC."""
    from releases.models import ImpactItem
    from releases.services import update_rfc

    ours = _rfc(people, site_a, "1.0.1", ["Line 2"])
    theirs = _rfc(people, site_a, "1.0.2", ["LINE 2"], ["Straße"])
    assert set(ImpactItem.objects.filter(rfc=theirs).values_list("kind", "key")) == {
        ("line", "line 2"),
        ("module", "straße"),
    }
    assert [n["rfc"] for n in conflicts.neighbours(ours, ours.impacts.all())[site_a.pk]] == [theirs]
    update_rfc(people["dev"], theirs, impacts=[{"site": site_a, "lines": ["Line 3"], "modules": ["STRASSE"]}])
    assert set(ImpactItem.objects.filter(rfc=theirs).values_list("kind", "key")) == {
        ("line", "line 3"),
        ("module", "strasse"),  # Python's lower(), not casefold(): "straße" stays another name
    }
    assert conflicts.neighbours(ours, ours.impacts.all()) == {}
    third = _rfc(people, site_a, "1.0.3", ["Line 9"])
    impact = third.impacts.get()
    impact.lines = ["line 2"]
    impact.save()
    assert [n["rfc"] for n in conflicts.neighbours(ours, ours.impacts.all())[site_a.pk]] == [third]
    Impact.objects.create(rfc=ours, site=site_b, lines=["Line 2"])
    ours = type(ours).objects.get(pk=ours.pk)
    found = conflicts.neighbours(ours, ours.impacts.all())
    assert list(found) == [site_a.pk]  # the line at the other site is another line
    third.delete()
    assert not ImpactItem.objects.filter(rfc_id=third.pk).exists()


def test_the_migration_indexes_the_impacts_already_there(people, site_a):
    from importlib import import_module

    from django.apps import apps

    from releases.models import ImpactItem

    ours = _rfc(people, site_a, "1.0.1", ["Line 2", "line 2"], ["Wägen"])
    ImpactItem.objects.all().delete()
    import_module("releases.migrations.0019_impact_items").index_items(apps, None)
    assert sorted(ImpactItem.objects.filter(rfc=ours).values_list("kind", "key")) == [
        ("line", "line 2"),
        ("module", "wägen"),
    ]


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
        with translation.override("en-gb"):  # put back after the request's own language
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


def test_a_name_stored_before_the_limit_is_left_out_of_the_index(people, site_a):
    """A name too long for an index entry (3,000 characters, from before names were limited) does not
    fail the write: the impact's other items are indexed, that one is not."""
    from releases.models import ImpactItem

    ours = _rfc(people, site_a, "1.0.1", ["Line 2"])
    Impact.objects.filter(rfc=ours).delete()
    Impact.objects.create(rfc=ours, site=site_a, lines=["L" * 3000, "Line 2"])
    assert list(ImpactItem.objects.filter(rfc=ours).values_list("kind", "key")) == [("line", "line 2")]
