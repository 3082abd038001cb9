"""Addresses that work (issue 15 item 1): every link that leaves a page is built from SITE_URL when it is
set and from the request's host otherwise, so `make run` on any port mails working links."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import icalendar
import pytest
import requests
from django.core import mail as django_mail
from django.urls import reverse

from approvals import mail
from core import links
from outbox import services as outbox
from tests import factories
from tests.conftest import client_for
from workflow import services as wf

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(https?://\S+/approvals/link/[\w-]+/)")


@pytest.fixture
def unset(settings):
    settings.SITE_URL = ""
    return settings


def test_the_feed_address_follows_the_port_the_page_was_reached_on(cast, unset):
    client = client_for(cast["releasemgr"])
    response = client.post(reverse("environments:calendar_feed"), HTTP_HOST="127.0.0.1:8201")
    assert response.status_code == 200
    assert "http://127.0.0.1:8201/environments/calendar/" in response.content.decode()
    assert "127.0.0.1:8000" not in response.content.decode()


def test_a_configured_site_url_wins_over_the_host_header(cast, settings):
    settings.SITE_URL = "https://change.plant.example"
    response = client_for(cast["releasemgr"]).post(
        reverse("environments:calendar_feed"), HTTP_HOST="127.0.0.1:8201"
    )
    assert "https://change.plant.example/environments/calendar/" in response.content.decode()
    assert "8201" not in response.content.decode()


def test_feed_uids_do_not_change_with_the_address_used(cast, site_a, unset):
    from reports.feeds import issue_token

    token = issue_token(cast["releasemgr"])
    url = reverse("environments:calendar_ics", args=[site_a.code])
    first = icalendar.Calendar.from_ical(
        client_for(cast["releasemgr"]).get(url, {"token": token}, HTTP_HOST="127.0.0.1:8201").content
    )
    second = icalendar.Calendar.from_ical(
        client_for(cast["releasemgr"]).get(url, {"token": token}, HTTP_HOST="localhost:8300").content
    )
    assert [str(e["UID"]) for e in first.walk("VEVENT")] == [str(e["UID"]) for e in second.walk("VEVENT")]


def test_work_outside_a_request_uses_the_port_it_runs_on(unset, monkeypatch):
    monkeypatch.setenv("PORT", "8201")
    assert links.absolute_url("/rfcs/") == "http://127.0.0.1:8201/rfcs/"
    assert links.stable_host() == "plant-change-control"


def test_make_run_derives_site_url_from_port():
    env = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "MAKEFLAGS", "MAKELEVEL"}}
    dry = subprocess.run(
        ["make", "-n", "run", "PORT=8201"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert dry.returncode == 0, dry.stderr
    command = next(line for line in dry.stdout.splitlines() if "SITE_URL=" in line)
    # The shell expands ${SITE_URL:-…}: with SITE_URL unset it is the address on PORT.
    expanded = subprocess.run(
        ["bash", "-c", "echo " + re.search(r"SITE_URL=(\S+)", command).group(1)],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert expanded.stdout.strip() == "http://127.0.0.1:8201"


def test_check_deploy_warns_without_site_url(unset):
    from changecontrol.checks import site_url

    assert [w.id for w in site_url()] == ["changecontrol.W001"]
    unset.SITE_URL = "https://change.plant.example"
    assert site_url() == []


@pytest.mark.django_db(transaction=True)
def test_a_mailed_link_works_on_a_non_default_port(cast, site_a, live_server, settings):
    """The portal on the live server's free port; SITE_URL as `make run` derives it from PORT."""
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    wf.submit(cast["dev"], rfc)
    mail.send_notifications()
    outbox.deliver()
    message = next(m for m in django_mail.outbox if m.to == ["itmanager@plant.test"])
    link = LINK.search(message.body).group(1)
    assert link.startswith(live_server.url + "/approvals/link/")
    response = requests.get(link, timeout=30)  # anonymous: the sign-in, which comes back to the link
    assert response.status_code == 200
    assert response.url.startswith(live_server.url + "/accounts/login/?next=%2Fapprovals%2Flink%2F")
    assert 'name="password"' in response.text
