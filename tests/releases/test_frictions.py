"""Small frictions a newcomer hit (issue 18 item 6): the release picker by version, newest first; a
refused action's page names the RFC's own address; a refused request logs one line; timer-driven
polls are not logged per request."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from core.logfilters import OneLineRefusals, QuietPolls
from releases.forms import release_choices
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_release_picker_lists_the_newest_version_first(cast):
    for version in ("2.9.1", "2.10.0", "2.9.10", "1.0.0"):
        factories.release(cast["dev"], version)
    labels = [label for _, label in release_choices()[1:]]
    assert labels == ["MES 2.10.0", "MES 2.9.10", "MES 2.9.1", "MES 1.0.0"]


def test_a_refused_action_names_the_rfc_address(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)  # no UAT sign-off: submission is refused
    response = client_for(cast["dev"]).post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    assert response.status_code in (409, 422)
    assert f'data-canonical-url="{reverse("releases:detail", args=[rfc.uuid])}"' in response.content.decode()


def test_a_refusal_logs_one_line_and_a_poll_none():
    try:
        raise PermissionError("no")
    except PermissionError:
        import sys

        info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden: %s", ("/x",), info)
    record.status_code = 403
    assert OneLineRefusals().filter(record) and record.exc_info is None
    crash = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Error: %s", ("/x",), info)
    crash.status_code = 500
    assert OneLineRefusals().filter(crash) and crash.exc_info is not None
    assert not QuietPolls().filter(served("GET /approvals/?poll=1 HTTP/1.1", "200"))
    assert QuietPolls().filter(served("GET /approvals/?poll=1 HTTP/1.1", "403"))
    assert QuietPolls().filter(served("GET /approvals/ HTTP/1.1", "200"))


def served(line: str, status: str) -> logging.LogRecord:
    """A development-server request log record, as Django's runserver writes it."""
    return logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (line, status, "512"), None
    )


def test_the_admin_wears_the_portals_header_navigation_and_version(cast):
    from core.version import __version__

    html = client_for(cast["admin"]).get(reverse("admin:index")).content.decode()
    assert 'aria-label="Portal"' in html and f'href="{reverse("releases:list")}"' in html
    assert f"v{__version__}" in html and "Plant Change Control" in html


def test_several_evidence_files_in_one_upload_all_or_none(cast, site_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from releases.models import Evidence

    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["dev"])
    url = reverse("releases:evidence_add", args=[rfc.uuid])
    two = [factories.png("first.png"), factories.log("run.log")]
    response = client.post(url, {"file": two, "kind": "screenshot", "description": "UAT run"})
    assert response.status_code == 302
    assert sorted(Evidence.objects.filter(rfc=rfc).values_list("original_name", flat=True)) == [
        "first.png",
        "run.log",
    ]
    bad = SimpleUploadedFile("tool.exe", b"MZ\x90\x00 not evidence", content_type="application/octet-stream")
    refused = client.post(url, {"file": [factories.png("third.png"), bad], "kind": "screenshot"})
    assert refused.status_code == 400 and "tool.exe" in refused.content.decode()
    assert Evidence.objects.filter(rfc=rfc).count() == 2  # neither of the second upload's files
    eleven = [factories.png(f"s{n}.png") for n in range(11)]
    assert client.post(url, {"file": eleven, "kind": "screenshot"}).status_code == 400
    assert Evidence.objects.filter(rfc=rfc).count() == 2


def test_submitting_and_removing_evidence_ask_first(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["dev"])
    client.post(
        reverse("releases:evidence_add", args=[rfc.uuid]),
        {"file": [factories.png("a.png")], "kind": "screenshot"},
    )
    html = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert f'data-confirm="Submit {rfc.number} for approval?' in html
    assert f'data-confirm="Remove a.png from {rfc.number}?"' in html
    # Someone who may not remove it is not offered Remove.
    other = client_for(cast["itmanager"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert 'data-confirm="Remove' not in other and 'aria-label="Remove a.png"' not in other


def test_a_key_user_signs_off_citing_evidence_already_attached(cast, site_a):
    from releases.models import Evidence, UatSignoff

    rfc = factories.rfc(cast["dev"], site_a)
    factories.promote(rfc, site_a)
    client_for(cast["dev"]).post(
        reverse("releases:evidence_add", args=[rfc.uuid]), {"file": [factories.log("uat.log")], "kind": "log"}
    )
    attached = Evidence.objects.get(rfc=rfc)
    key_user = client_for(cast["tester"])
    url = reverse("releases:signoff", args=[rfc.uuid])
    refused = key_user.post(
        url, {"site": site_a.code, "comment": "Printed 40 labels", "cite": ["not-a-uuid"]}
    )
    assert refused.status_code == 400 and not UatSignoff.objects.exists()
    nothing = key_user.post(url, {"site": site_a.code, "comment": "Printed 40 labels"})
    assert nothing.status_code == 400 and "or cite one already attached" in nothing.content.decode()
    done = key_user.post(
        url, {"site": site_a.code, "comment": "Printed 40 labels", "cite": [str(attached.uuid)]}
    )
    assert done.status_code == 302, done.content.decode()[:2000]
    signoff = UatSignoff.objects.get(rfc=rfc)
    assert list(signoff.evidence.all()) == [attached]
    assert Evidence.objects.filter(rfc=rfc).count() == 1  # nothing uploaded twice
