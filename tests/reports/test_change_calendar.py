"""The change calendar (week and month, per site and across sites) and its ICS feed.

The week used throughout is Mon 11 – Sun 17 May 2026: Thursday 14 May is Ascension Day in Berlin
(plant A, DE-BE), Friday 15 May is a Friday, no quarter close is near.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from deployments.models import Deployment, DeploymentState
from environments.models import CalendarFeedToken, Freeze
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

MONDAY_UTC = datetime(2026, 5, 11, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
_patch = itertools.count(1)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(MONDAY_UTC, tick=False):
        yield


def _prod(site):
    return site.environments.get(tier="PROD")


def deploy(cast, site, start: datetime, *, rfc=None, emergency: bool = False, minutes: int = 30, **extra):
    title = extra.pop("title", "Raise label printer timeout")
    rfc = rfc or factories.rfc(cast["dev"], site, version=f"1.0.{next(_patch)}", title=title)
    return Deployment.objects.create(
        rfc=rfc,
        environment=_prod(site),
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=minutes + 30),
        duration_minutes=minutes,
        scheduled_by=cast["releasemgr"],
        emergency=emergency,
        **extra,
    )


@pytest.fixture
def plan(cast, site_a, site_b):
    """One normal and one emergency deployment at plant A, one at plant B, a freeze at plant A."""
    normal = deploy(
        cast, site_a, datetime(2026, 5, 12, 7, 0, tzinfo=UTC), title="Raise label printer timeout"
    )
    urgent = deploy(
        cast, site_a, datetime(2026, 5, 13, 18, 0, tzinfo=UTC), emergency=True, title="Patch scanner crash"
    )
    chicago = deploy(cast, site_b, datetime(2026, 5, 12, 14, 0, tzinfo=UTC), title="Chicago pallet labels")
    cancelled = deploy(
        cast,
        site_a,
        datetime(2026, 5, 12, 12, 0, tzinfo=UTC),
        title="Cancelled one",
        state=DeploymentState.CANCELLED,
    )
    freeze = Freeze.objects.create(
        site=site_a,
        name="Press line retrofit",
        reason="Line 3 rebuilt by the vendor",
        starts_at=datetime(2026, 5, 13, 10, 0, tzinfo=UTC),
        ends_at=datetime(2026, 5, 13, 16, 0, tzinfo=UTC),
    )
    return {"normal": normal, "urgent": urgent, "chicago": chicago, "cancelled": cancelled, "freeze": freeze}


def page(user, code: str | None = None, **params):
    url = reverse("environments:calendar_site", args=[code]) if code else reverse("environments:calendar")
    return client_for(user).get(url, params)


def day_html(body: str, label: str) -> str:
    """The markup of one day (week column or month cell), found by its aria-label."""
    match = re.search(
        rf'aria-label="{label}[^"]*">(.*?)</(?:section|div)>\s*(?:<section|<div role="cell"|</div>)',
        body,
        re.S,
    )
    assert match, f"no day labelled {label!r}"
    return match.group(1)


# --- Week and month -----------------------------------------------------------------------------
@pytest.mark.parametrize("view", ["week", "month"])
def test_site_calendar_shows_deployments_freeze_holiday_handover_and_window(cast, site_a, plan, view):
    response = page(cast["releasemgr"], site_a.code, view=view)
    assert response.status_code == 200
    body = response.content.decode()
    assert "calendar.css" in body

    normal, urgent = plan["normal"], plan["urgent"]
    tuesday = day_html(body, "Tuesday 12 May 2026")
    assert normal.rfc.number in tuesday and "Raise label printer timeout" in tuesday
    assert reverse("releases:detail", args=[normal.rfc.uuid]) in tuesday
    assert "09:00–10:00" in tuesday  # 07:00 UTC is 09:00 in Berlin (CEST), the slot held until 10:00
    assert ">PROD<" in tuesday
    assert 'data-kind="window"' in tuesday and "09:00–11:00" in tuesday
    assert 'data-kind="handover"' in tuesday and "14:00" in tuesday
    assert "Emergency" not in tuesday
    assert plan["cancelled"].rfc.number not in body  # only active deployments hold a slot

    wednesday = day_html(body, "Wednesday 13 May 2026")
    assert urgent.rfc.number in wednesday and "Patch scanner crash" in wednesday
    assert re.search(r'class="badge bad cal-emergency-badge">Emergency<', wednesday)
    assert "Freeze: Press line retrofit" in wednesday
    if view == "week":
        assert "Line 3 rebuilt by the vendor" in wednesday and "12:00–18:00" in wednesday

    thursday = day_html(body, "Thursday 14 May 2026")
    assert "Holiday: Ascension Day" in thursday
    assert "cal-window-blocked" in thursday  # the holiday closes Thursday's windows
    assert plan["chicago"].rfc.number not in body  # plant B's deployment is not on plant A's calendar


def test_week_is_the_week_of_today_in_the_site_zone_with_today_and_blocked_days_marked(cast, site_a, site_b):
    # 03:00 UTC on Monday 11 May is still Sunday 10 May, 22:00 in Chicago.
    with time_machine.travel(datetime(2026, 5, 11, 3, 0, tzinfo=UTC), tick=False):
        berlin = page(cast["releasemgr"], site_a.code).content.decode()
        chicago = page(cast["releasemgr"], site_b.code).content.decode()
    assert "Week of 11 May – 17 May 2026" in berlin
    assert re.search(r'class="cal-day cal-today"\s+aria-label="Monday 11 May 2026 \(today\)"', berlin)
    assert re.search(r'class="cal-day cal-day-blocked" aria-label="Thursday 14 May 2026"', berlin)  # holiday
    assert re.search(r'class="cal-day cal-day-blocked" aria-label="Friday 15 May 2026"', berlin)
    assert not re.search(r'cal-day-blocked" aria-label="Wednesday', berlin)
    assert "Week of 4 May – 10 May 2026" in chicago
    assert 'aria-label="Sunday 10 May 2026 (today)"' in chicago


def test_navigation_links_and_legend(cast, site_a):
    body = page(cast["releasemgr"], site_a.code, view="month", date="2026-05-20").content.decode()
    assert "May 2026" in body
    base = reverse("environments:calendar_site", args=[site_a.code])
    assert f'href="{base}?view=month&amp;date=2026-04-01"' in body
    assert f'href="{base}?view=month&amp;date=2026-06-01"' in body
    assert f'href="{base}?view=month"' in body  # today
    assert reverse("environments:calendar_feed") in body
    for label in ("Deployment window", "Shift handover", "Emergency change", "Freeze", "Public holiday"):
        assert label in body
    # A month grid from the Monday before the 1st to the Sunday after the 31st: 27 Apr – 31 May.
    assert 'aria-label="Monday 27 April 2026"' in body and 'aria-label="Sunday 31 May 2026"' in body
    week = page(cast["releasemgr"], site_a.code, view="week", date="2026-05-20").content.decode()
    assert f'href="{base}?view=week&amp;date=2026-05-11"' in week and "Week of 18 May – 24 May 2026" in week


def test_a_bad_view_falls_back_to_this_week_and_a_bad_date_is_refused(cast, site_a):
    body = page(cast["releasemgr"], site_a.code, view="year").content.decode()
    assert "Week of 11 May – 17 May 2026" in body
    for day in ("2026-13-45", "9999-12-31", "0001-01-01", "tomorrow"):
        refused = page(cast["releasemgr"], site_a.code, view="month", date=day)
        assert refused.status_code == 400
        assert "date: give a date" in refused.content.decode()


def test_all_sites_view_shows_both_sites_in_their_local_time(cast, site_a, site_b, plan):
    body = page(cast["releasemgr"]).content.decode()
    assert plan["normal"].rfc.number in body and plan["chicago"].rfc.number in body
    tuesday = day_html(body, "Tuesday 12 May 2026")
    # Each event labelled with its site and local time plus zone abbreviation.
    assert re.search(r"PLA</strong> 09:00–10:00 CEST", tuesday)
    assert re.search(r"PLB</strong> 09:00–10:00 CDT", tuesday)
    assert "PLB</strong> 09:00–11:00 CDT" in tuesday  # plant B's window in Chicago time
    # Each site's events stand on its own local day: Chicago's Monday-evening handover (02:30 UTC on
    # Tuesday) is in Monday's column, Tuesday evening's in Tuesday's.
    assert "PLB</strong> 21:30–22:30 CDT" in day_html(body, "Monday 11 May 2026")
    assert "PLB</strong> 21:30–22:30 CDT" in tuesday and "PLB</strong> Mon 21:30" not in body
    assert "Holiday: Ascension Day" in day_html(body, "Thursday 14 May 2026")


def test_across_sites_a_deployment_near_midnight_utc_stands_on_its_sites_local_day(cast, site_a, site_b):
    """Berlin 01:30 on Tuesday is 23:30 UTC on Monday; Chicago 22:00 on Tuesday is 03:00 UTC on
    Wednesday: across sites both stand in Tuesday's column, each in its own zone."""
    berlin = deploy(cast, site_a, datetime(2026, 5, 11, 23, 30, tzinfo=UTC), title="Berlin after midnight")
    chicago = deploy(cast, site_b, datetime(2026, 5, 13, 3, 0, tzinfo=UTC), title="Chicago late evening")
    body = page(cast["releasemgr"]).content.decode()
    tuesday = day_html(body, "Tuesday 12 May 2026")
    assert berlin.rfc.number in tuesday and "PLA</strong> 01:30–02:30 CEST" in tuesday
    assert chicago.rfc.number in tuesday and "PLB</strong> 22:00–23:00 CDT" in tuesday
    assert berlin.rfc.number not in day_html(body, "Monday 11 May 2026")
    assert chicago.rfc.number not in day_html(body, "Wednesday 13 May 2026")


def test_past_deployments_stay_with_their_outcome(cast, site_a):
    """A finished deployment stays on the calendar with its outcome, over its real span."""
    done = deploy(
        cast,
        site_a,
        datetime(2026, 5, 11, 7, 0, tzinfo=UTC),
        title="Rolled back change",
        state=DeploymentState.ROLLED_BACK,
        started_at=datetime(2026, 5, 11, 7, 1, tzinfo=UTC),
        finished_at=datetime(2026, 5, 11, 7, 20, tzinfo=UTC),
    )
    monday = day_html(page(cast["releasemgr"], site_a.code).content.decode(), "Monday 11 May 2026")
    assert done.rfc.number in monday and "Rolled back" in monday and "09:01–09:20" in monday


@pytest.mark.parametrize("view", ["week", "month"])
def test_a_site_the_user_may_not_see_is_404(cast, site_a, site_b, plan, view):
    user = cast["itmanager_a"]  # IT manager of plant A only
    assert page(user, site_b.code, view=view).status_code == 404
    assert page(user, "NOPE", view=view).status_code == 404
    assert page(user, site_a.code, view=view).status_code == 200
    everything = page(user, view=view).content.decode()
    assert plan["normal"].rfc.number in everything
    assert plan["chicago"].rfc.number not in everything and "PLB" not in everything


def test_calendar_needs_a_login(client, site_a):
    response = client.get(reverse("environments:calendar"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_calendar_is_in_the_navigation_after_rfcs(cast):
    body = client_for(cast["itmanager"]).get(reverse("home")).content.decode()
    labels = re.findall(r'data-nav="(\w+)"', body)
    assert labels[:5] == ["home", "rfcs", "calendar", "dashboard", "approvals"]


def _count(client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params).status_code == 200
    return len(ctx.captured_queries)


def _many_deployments(cast, sites, count: int) -> None:
    rfc = factories.rfc(cast["dev"], sites[0], version=f"1.0.{next(_patch)}")
    start = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
    Deployment.objects.bulk_create(
        [
            Deployment(
                rfc=rfc,
                environment=_prod(sites[n % len(sites)]),
                scheduled_start=start + timedelta(days=n % 28, minutes=5 * n),
                scheduled_end=start + timedelta(days=n % 28, minutes=5 * n + 60),
                duration_minutes=30,
                scheduled_by=cast["releasemgr"],
                emergency=n % 3 == 0,
            )
            for n in range(count)
        ]
    )


@pytest.mark.parametrize("view", ["week", "month"])
@pytest.mark.parametrize("scope", ["site", "all"])
def test_queries_do_not_grow_with_deployments(cast, site_a, site_b, view, scope):
    client = client_for(cast["releasemgr"])
    url = (
        reverse("environments:calendar_site", args=[site_a.code])
        if scope == "site"
        else reverse("environments:calendar")
    )
    params = {"view": view, "date": "2026-05-12"}
    _many_deployments(cast, [site_a, site_b], 2)
    few = _count(client, url, params)
    _many_deployments(cast, [site_a, site_b], 28)
    assert Deployment.objects.count() == 30
    many = _count(client, url, params)
    print(f"calendar {scope}/{view}: {few} queries with 2 deployments, {many} with 30")
    assert few == many
    assert many <= 15


# --- The feed token -----------------------------------------------------------------------------
def make_token(user) -> str:
    response = client_for(user).post(reverse("environments:calendar_feed"))
    assert response.status_code == 200
    token = response.context["token"]
    assert token and token in response.content.decode()
    return token


def feed(code: str, token: str | None):
    from django.test import Client

    params = {"token": token} if token is not None else {}
    return Client().get(reverse("environments:calendar_ics", args=[code]), params)


def test_token_is_shown_once_and_only_its_hash_is_stored(cast):
    user = cast["releasemgr"]
    token = make_token(user)
    stored = CalendarFeedToken.objects.get(user=user)
    assert stored.token_hash != token and len(stored.token_hash) == 64
    again = client_for(user).get(reverse("environments:calendar_feed")).content.decode()
    assert token not in again and "not shown again" in again
    event = AuditEvent.objects.get(action="environments.feed_token.created")
    assert event.actor_name == user.username and token not in str(event.after)


def test_regenerated_token_invalidates_the_old_one(cast, site_a):
    user = cast["releasemgr"]
    old = make_token(user)
    assert feed(site_a.code, old).status_code == 200
    new = make_token(user)
    assert new != old
    assert feed(site_a.code, old).status_code == 404
    assert feed(site_a.code, new).status_code == 200
    assert CalendarFeedToken.objects.filter(user=user).count() == 1
    assert AuditEvent.objects.filter(action="environments.feed_token.regenerated").count() == 1


def test_feed_refuses_bad_tokens_and_hidden_sites(cast, site_a, site_b):
    assert feed(site_a.code, None).status_code == 404
    assert feed(site_a.code, "not-a-token").status_code == 404
    assert feed(site_a.code, "").status_code == 404
    scoped = make_token(cast["itmanager_a"])
    assert feed(site_a.code, scoped).status_code == 200
    assert feed(site_b.code, scoped).status_code == 404
    assert feed("NOPE", scoped).status_code == 404
    cast["itmanager_a"].is_active = False
    cast["itmanager_a"].save()
    assert feed(site_a.code, scoped).status_code == 404


def test_feed_page_needs_a_login(client):
    response = client.post(reverse("environments:calendar_feed"))
    assert response.status_code == 302
    assert not CalendarFeedToken.objects.exists()


# --- The ICS feed -------------------------------------------------------------------------------
def test_ics_feed_parsed_back(cast, site_a, plan, settings):
    settings.SITE_URL = "https://changes.plant.example"
    late = deploy(cast, site_a, datetime(2026, 11, 20, 9, 0, tzinfo=UTC), title="Beyond the horizon")
    token = make_token(cast["releasemgr"])
    response = feed(site_a.code, token)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"

    cal = icalendar.Calendar.from_ical(response.content)
    assert "Plant Change Control" in str(cal["PRODID"])
    assert str(cal["X-WR-CALNAME"]) == "PLA change calendar"
    assert str(cal["X-WR-TIMEZONE"]) == "Europe/Berlin"
    events = {str(event["UID"]): event for event in cal.walk("VEVENT")}
    by_summary = {str(event["SUMMARY"]): event for event in events.values()}

    normal = by_summary[f"{plan['normal'].rfc.number} Raise label printer timeout"]
    assert normal.decoded("DTSTART") == datetime(2026, 5, 12, 7, 0, tzinfo=UTC)
    assert normal.decoded("DTSTART").utcoffset() == timedelta(0)
    assert normal.decoded("DTEND") == datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
    assert str(normal["UID"]).startswith(f"deployment-{plan['normal'].uuid}@changes.plant.example")
    description = str(normal["DESCRIPTION"])
    assert "PLA PROD" in description
    assert (
        f"https://changes.plant.example{reverse('releases:detail', args=[plan['normal'].rfc.uuid])}"
        in description
    )

    urgent = by_summary[f"[EMERGENCY] {plan['urgent'].rfc.number} Patch scanner crash"]
    assert urgent.decoded("DTSTART") == datetime(2026, 5, 13, 18, 0, tzinfo=UTC)

    freeze = by_summary["Freeze: Press line retrofit"]
    assert freeze.decoded("DTSTART") == datetime(2026, 5, 13, 10, 0, tzinfo=UTC)
    assert "Line 3 rebuilt by the vendor" in str(freeze["DESCRIPTION"])
    assert f"freeze-{plan['freeze'].pk}@changes.plant.example" in events

    holiday = by_summary["Holiday: Ascension Day"]
    assert holiday.decoded("DTSTART") == date(2026, 5, 14)
    assert holiday.decoded("DTEND") == date(2026, 5, 15)
    # The Q2 close: the last 10 days of June, one all-day event.
    quarter = by_summary["Freeze: Q2 2026 close"]
    assert quarter.decoded("DTSTART") == date(2026, 6, 21) and quarter.decoded("DTEND") == date(2026, 7, 1)

    # Only active deployments at this site, up to 180 days ahead.
    assert plan["cancelled"].rfc.number not in response.content.decode()
    assert plan["chicago"].rfc.number not in response.content.decode()
    assert late.rfc.number not in response.content.decode()
    # UIDs are stable: the same feed fetched again names the same events.
    again = icalendar.Calendar.from_ical(feed(site_a.code, token).content)
    assert {str(event["UID"]) for event in again.walk("VEVENT")} == set(events)


def test_the_feed_is_valid_rfc_5545_for_icalendar_and_vobject_across_a_dst_change(cast, site_a, settings):
    """The feed parses with the current icalendar and with vobject; REFRESH-INTERVAL is a duration
    (PT1H); a deployment on each side of Berlin's autumn clock change (25 October 2026) keeps its
    instant; a past deployment stays, with its outcome."""
    import vobject

    settings.SITE_URL = "https://changes.plant.example"
    before = deploy(
        cast, site_a, datetime(2026, 10, 24, 7, 0, tzinfo=UTC), title="Before the change"
    )  # 09:00 CEST
    after = deploy(
        cast, site_a, datetime(2026, 10, 26, 8, 0, tzinfo=UTC), title="After the change"
    )  # 09:00 CET
    past = deploy(
        cast,
        site_a,
        datetime(2026, 5, 4, 7, 0, tzinfo=UTC),
        title="Last week's change",
        state=DeploymentState.SUCCEEDED,
        started_at=datetime(2026, 5, 4, 7, 0, tzinfo=UTC),
        finished_at=datetime(2026, 5, 4, 7, 12, tzinfo=UTC),
    )
    with time_machine.travel(datetime(2026, 10, 20, 8, 0, tzinfo=UTC), tick=False):
        body = feed(site_a.code, make_token(cast["releasemgr"])).content
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in body
    parsed = icalendar.Calendar.from_ical(body)
    starts = {str(e["SUMMARY"]): e.decoded("DTSTART") for e in parsed.walk("VEVENT")}
    assert starts[f"{before.rfc.number} Before the change"] == before.scheduled_start
    assert starts[f"{after.rfc.number} After the change"] == after.scheduled_start
    assert starts[f"{before.rfc.number} Before the change"].astimezone(BERLIN).hour == 9
    assert starts[f"{after.rfc.number} After the change"].astimezone(BERLIN).hour == 9
    card = vobject.readOne(body.decode())
    by_summary = {event.summary.value: event for event in card.vevent_list}
    assert by_summary[f"{after.rfc.number} After the change"].dtstart.value == after.scheduled_start
    with time_machine.travel(datetime(2026, 5, 11, 8, 0, tzinfo=UTC), tick=False):
        recent = icalendar.Calendar.from_ical(feed(site_a.code, make_token(cast["releasemgr"])).content)
    summaries = {str(e["SUMMARY"]): e for e in recent.walk("VEVENT")}
    done = summaries[f"{past.rfc.number} Last week's change — succeeded"]
    assert done.decoded("DTEND") == datetime(2026, 5, 4, 7, 12, tzinfo=UTC)  # its real span
