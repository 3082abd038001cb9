"""The change-advisory view (issue 16 item 6): the week ahead's PROD changes by site and day with
class, risk, change model, conflicts and gate status, as a page, CSV (formula-escaped) and PDF."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reports import cab
from tests import factories
from tests.conftest import client_for
from workflow import services as wf

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 9, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def booked(people, site, version, day, title="Raise label printer timeout", lines=("Line 2",)):
    rfc = factories.sign_chain(
        people,
        factories.ready_rfc(
            people["dev"],
            people["tester"],
            site,
            version=version,
            title=title,
            impacts=[{"site": site, "lines": list(lines), "modules": ["Labelling"]}],
        ),
    )
    wf.schedule(
        people["releasemgr"],
        rfc,
        site,
        datetime(2026, 11, day, 9, 0, tzinfo=BERLIN),
        30,
        acknowledge_conflicts=True,
    )
    return rfc


def test_the_week_ahead_lists_prod_changes_with_model_risk_conflicts_and_gates(people, site_a):
    tuesday = booked(people, site_a, "1.0.1", 10, title='=HYPERLINK("http://x")')
    wednesday = booked(people, site_a, "1.0.2", 11, lines=("Line 7",))
    # A UAT run of another RFC on line 2 beside Tuesday's slot.
    other = factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.3")
    start = datetime(2026, 11, 10, 9, 0, tzinfo=BERLIN).astimezone(UTC)
    factories.booking(
        other, site_a, people["releasemgr"], tier="UAT", hours_ahead=(start - NOW).total_seconds() / 3600
    )

    rows = cab.week(people["releasemgr"], datetime(2026, 11, 9, tzinfo=UTC))
    assert [r.rfc.number for r in rows] == [tuesday.number, wednesday.number]
    first = rows[0]
    assert first.local_day == "Tue 10 Nov" and first.local_span == "09:00–10:00 CET"
    assert first.model == "Normal" and first.risk == "Low"
    assert first.conflicts == [f"{other.number} in UAT: production line Line 2, module Labelling"]
    assert rows[1].conflicts == []
    assert all(r.failing == [] or all(":" in g for g in r.failing) for r in rows)

    client = client_for(people["releasemgr"])
    page = client.get(reverse("releases:cab"), {"start": "2026-11-09"})
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="cab-site-PLA"' in html and other.number in html
    exported = client.get(reverse("releases:cab"), {"start": "2026-11-09", "format": "csv"})
    lines = list(csv.reader(io.StringIO(exported.content.decode())))
    assert lines[0][:4] == ["site", "day", "time", "rfc"]
    assert lines[1][4] == '\'=HYPERLINK("http://x")'  # never a formula in a spreadsheet
    pdf = client.get(reverse("releases:cab"), {"start": "2026-11-09", "format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert (
        "No PROD change is booked"
        in client.get(reverse("releases:cab"), {"start": "2026-11-16"}).content.decode()
    )


def test_a_bad_start_is_a_clear_error(people):
    client = client_for(people["releasemgr"])
    for value in ("next tuesday", "9999-01-01", "2026-13-40"):
        response = client.get(reverse("releases:cab"), {"start": value})
        assert response.status_code == 400 and "errorbox" in response.content.decode()


def test_the_queries_do_not_grow_with_the_bookings(people, site_a):
    booked(people, site_a, "1.0.1", 10)
    with CaptureQueriesContext(connection) as one:
        cab.week(people["releasemgr"], datetime(2026, 11, 9, tzinfo=UTC), with_gates=False)
    booked(people, site_a, "1.0.2", 11)
    booked(people, site_a, "1.0.3", 12)
    with CaptureQueriesContext(connection) as three:
        rows = cab.week(people["releasemgr"], datetime(2026, 11, 9, tzinfo=UTC), with_gates=False)
    assert len(rows) == 3 and len(three.captured_queries) == len(one.captured_queries)
