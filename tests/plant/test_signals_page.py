"""Business signals on the environment page and the RFC page (issue 19 item 3, C5): what each signal
reads, how it is judged, the last reading; "Read the signals now" for who may configure the environment."""

from __future__ import annotations

import pytest

from deployments import readiness
from environments.models import Environment, SignalReading
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

QUEUE = {
    "adapter": "sql",
    "name": "Unconfirmed queue depth",
    "database": "sqlite:///{db}",
    "query": "SELECT count(*) FROM confirmations WHERE status = 'failed'",
    "max": 50,
}
ORDERS = {
    "adapter": "http",
    "name": "Orders per minute",
    "url": "http://127.0.0.1:9/s",
    "field": "o",
    "good": "higher",
}


@pytest.fixture
def prod(site_a, tmp_path):
    import sqlite3

    db = tmp_path / "mes.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE confirmations (status TEXT)")
        conn.executemany("INSERT INTO confirmations VALUES (?)", [("failed",)] * 3)
    env = Environment.objects.get(site=site_a, tier="PROD")
    env.pipeline = {**env.pipeline, "signals": [{**QUEUE, "database": f"sqlite:///{db}"}, ORDERS]}
    env.save(update_fields=["pipeline"])
    return env


def test_the_environment_page_lists_the_signals_and_how_each_is_judged(cast, site_a, prod):
    page = client_for(cast["auditor"]).get(f"/environments/{site_a.code}/PROD/")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="signal-rows"' in html
    assert "Unconfirmed queue depth" in html and "before PROD: at most 50" in html
    assert "after a deployment: higher is better, at most 20 % worse than before" in html
    assert "read after each deployment" in html  # nothing read yet
    assert "Read the signals now" not in html  # the auditor may not configure it


def test_reading_now_keeps_a_reading_the_gate_trusts(cast, site_a, prod):
    client = client_for(cast["admin"])
    response = client.post(f"/environments/{site_a.code}/PROD/read-signals/", follow=True)
    assert response.status_code == 200
    reading = SignalReading.objects.get(environment=prod, trigger="request")
    assert reading.ok and reading.readings[0]["text"] == "3 (at most 50)"
    assert "Signals of" in response.content.decode() and "3 (at most 50)" in response.content.decode()
    rfc = factories.sign_chain(cast, factories.ready_rfc(cast["dev"], cast["tester"], site_a))
    assert readiness.business_signals_ready(rfc).passed
    rfc_page = client.get(f"/rfcs/{rfc.uuid}/").content.decode()
    assert "Business signals ready" in rfc_page and "Unconfirmed queue depth 3 (at most 50)" in rfc_page
    assert "read from the plant again when the deployment starts" in rfc_page


def test_reading_now_is_for_who_may_configure_and_only_by_post(cast, site_a, prod):
    assert client_for(cast["dev"]).post(f"/environments/{site_a.code}/PROD/read-signals/").status_code == 403
    assert client_for(cast["admin"]).get(f"/environments/{site_a.code}/PROD/read-signals/").status_code == 405
    assert not SignalReading.objects.exists()


def test_an_environment_without_signals_says_what_to_add(cast, site_a):
    html = client_for(cast["admin"]).get(f"/environments/{site_a.code}/DEV/").content.decode()
    assert 'No business signals are declared: add "signals" to the pipeline' in html
