"""The RFC pages: list, filing, editing, the RFC page, evidence, UAT sign-off, actions.

Behaviour through the browser's HTTP: status, database rows, audit events, headers. Query counts
stay constant as data grows.
"""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import ApprovalRound
from audit.models import AuditEvent
from core.roles import Role
from releases.models import Evidence, Impact, Release, Rfc, UatSignoff
from tests import factories
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def detail_url(rfc) -> str:
    return reverse("releases:detail", args=[rfc.uuid])


def form_data(release, site, **extra) -> dict:
    data = {
        "title": "Raise label printer timeout",
        "description": "Printers on line 2 time out.",
        "release": release.pk,
        "estimated_downtime_minutes": 0,
        "rollback_plan": "Redeploy 1.0.0",
        f"site_{site.code}_on": "on",
        f"site_{site.code}_lines": "Line 2, Line 3",
        f"site_{site.code}_modules": "Labelling",
    }
    data.update(extra)
    return data


# --- Filing ----------------------------------------------------------------------------------
def test_developer_files_an_rfc_from_the_form(cast, site_a):
    release = factories.release(cast["dev"], "1.1.0")
    response = client_for(cast["dev"]).post(reverse("releases:create"), form_data(release, site_a))
    rfc = Rfc.objects.get()
    assert response.status_code == 302 and response["Location"] == detail_url(rfc)
    assert rfc.change_class == "minor" and rfc.author == cast["dev"] and rfc.state == "draft"
    impact = rfc.impacts.get()
    assert impact.site == site_a and impact.lines == ["Line 2", "Line 3"] and impact.modules == ["Labelling"]
    assert AuditEvent.objects.filter(action="releases.rfc.created", object_id=rfc.number).exists()


def test_form_without_a_site_is_refused_and_nothing_is_written(cast, site_a):
    release = factories.release(cast["dev"], "1.1.0")
    data = form_data(release, site_a)
    del data[f"site_{site_a.code}_on"]
    response = client_for(cast["dev"]).post(reverse("releases:create"), data)
    assert response.status_code == 400
    assert "Tick at least one target site" in response.content.decode()
    assert not Rfc.objects.exists()


def test_downgrade_is_refused_on_the_release_field(cast, site_a):
    release = factories.release(cast["dev"], "0.9.0")
    response = client_for(cast["dev"]).post(reverse("releases:create"), form_data(release, site_a))
    assert response.status_code == 400
    assert "older than 1.0.0, which runs in PROD" in response.content.decode()
    assert not Rfc.objects.exists()


def test_major_without_downtime_names_the_fields(cast, site_a):
    release = factories.release(cast["dev"], "2.0.0")
    response = client_for(cast["dev"]).post(reverse("releases:create"), form_data(release, site_a))
    body = response.content.decode()
    assert response.status_code == 400
    assert "A major change means downtime" in body and "A major change needs operators retrained" in body
    assert not Rfc.objects.exists()


def test_classify_fragment_shows_class_or_refusal(cast, site_a):
    client = client_for(cast["dev"])
    minor = factories.release(cast["dev"], "1.1.0")
    old = factories.release(cast["dev"], "0.1.0")
    url = reverse("releases:classify")
    ok = client.get(url, {"release": minor.pk, f"site_{site_a.code}_on": "on"}, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and "Minor (feature)" in ok.content.decode()
    refused = client.get(url, {"release": old.pk, f"site_{site_a.code}_on": "on"}, HTTP_HX_REQUEST="true")
    assert "downgrade" in refused.content.decode()


def test_only_filers_open_the_form(cast):
    assert client_for(cast["tester"]).get(reverse("releases:create")).status_code == 403
    assert client_for(cast["dev"]).get(reverse("releases:create")).status_code == 200


def test_release_page_hashes_the_upload_and_refuses_a_wrong_checksum(cast):
    client = client_for(cast["dev"])
    content = b"PK\x03\x04 mes build 1.2.0"
    response = client.post(
        reverse("releases:release_create"),
        {"product": "MES", "version": "1.2.0", "artifact": SimpleUploadedFile("mes-1.2.0.zip", content)},
    )
    release = Release.objects.get(version="1.2.0")
    assert response.status_code == 302 and f"release={release.pk}" in response["Location"]
    assert release.artifact_sha256 == hashlib.sha256(content).hexdigest()
    bad = client.post(
        reverse("releases:release_create"),
        {
            "product": "MES",
            "version": "1.2.1",
            "artifact": SimpleUploadedFile("mes-1.2.1.zip", content),
            "artifact_sha256": "0" * 64,
        },
    )
    assert bad.status_code == 400 and "changed on its way" in bad.content.decode()
    assert not Release.objects.filter(version="1.2.1").exists()


# --- Editing ---------------------------------------------------------------------------------
def test_only_the_author_edits_and_only_a_draft(cast, site_a):
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    other = make_user("dev2", Role.DEVELOPER)
    assert client_for(other).get(reverse("releases:edit", args=[rfc.uuid])).status_code == 403
    client = client_for(cast["dev"])
    response = client.post(
        reverse("releases:edit", args=[rfc.uuid]),
        form_data(rfc.release, site_a, title="Longer printer timeout"),
    )
    assert response.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).title == "Longer printer timeout"
    client.post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    response = client.get(reverse("releases:edit", args=[rfc.uuid]))
    assert response.status_code == 302 and response["Location"] == detail_url(rfc)


# --- The RFC page and its actions --------------------------------------------------------------
def test_submit_with_a_failing_gate_is_422_and_names_it(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    response = client_for(cast["dev"]).post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    body = response.content.decode()
    assert response.status_code == 422
    assert "UAT sign-off" in body and "No UAT sign-off with evidence for PLA" in body
    assert Rfc.objects.get(pk=rfc.pk).state == "draft"


def test_submit_opens_the_chain_and_the_page_shows_it(cast, site_a):
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    client = client_for(cast["dev"])
    response = client.post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    assert response.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).state == "submitted"
    assert ApprovalRound.objects.filter(rfc=rfc, state="open").count() == 1
    page = client.get(detail_url(rfc)).content.decode()
    assert 'data-testid="approval-chain"' in page and "IT Manager" in page
    assert "releases.rfc.submitted" in page  # the timeline


def test_the_chain_offers_review_and_sign_to_who_may_sign_while_pending(cast, site_a):
    """A3/A5: the RFC page links a pending approval to its signing page for the approver who may sign
    it, never for the author; once nothing is pending the page does not even ask."""
    from approvals.models import Approval
    from tests.conftest import PASSWORD
    from workflow import services as wf

    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    client_for(cast["dev"]).post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    approval = Approval.objects.get(rfc=rfc, state="pending")
    sign = reverse("approvals:decide", args=[approval.pk])
    assert f'href="{sign}"' in client_for(cast["itmanager"]).get(detail_url(rfc)).content.decode()
    assert f'href="{sign}"' not in client_for(cast["dev"]).get(detail_url(rfc)).content.decode()
    wf.sign(cast["itmanager"], approval, "approve", PASSWORD)
    with CaptureQueriesContext(connection) as seen:
        page = client_for(cast["itmanager"]).get(detail_url(rfc)).content.decode()
    assert f'href="{sign}"' not in page
    assert not [q for q in seen.captured_queries if "approvals_absence" in q["sql"]]


def test_withdraw_needs_a_reason(cast, site_a):
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    client = client_for(cast["dev"])
    client.post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    response = client.post(reverse("releases:transition", args=[rfc.uuid, "withdraw"]), {"reason": "  "})
    assert response.status_code == 400 and "needs a reason" in response.content.decode()
    assert Rfc.objects.get(pk=rfc.pk).state == "submitted"
    response = client.post(
        reverse("releases:transition", args=[rfc.uuid, "withdraw"]), {"reason": "Wrong line named"}
    )
    assert response.status_code == 302 and Rfc.objects.get(pk=rfc.pk).state == "draft"


def test_someone_else_may_not_submit(cast, site_a):
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    response = client_for(cast["releasemgr"]).post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
    assert response.status_code == 403
    assert Rfc.objects.get(pk=rfc.pk).state == "draft"


def test_unknown_transition_is_400_not_500(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    response = client_for(cast["dev"]).post(reverse("releases:transition", args=[rfc.uuid, "explode"]))
    assert response.status_code == 400


def test_rfc_of_another_site_is_404(cast, site_a, site_b):
    rfc_b = factories.rfc(cast["dev"], site_b)
    client = client_for(cast["itmanager_a"])
    assert client.get(detail_url(rfc_b)).status_code == 404
    assert (
        client.post(reverse("releases:transition", args=[rfc_b.uuid, "cancel"]), {"reason": "x"}).status_code
        == 404
    )
    assert rfc_b.number not in client.get(reverse("releases:list")).content.decode()


def test_markup_in_content_is_escaped(cast, site_a):
    rfc = factories.rfc(
        cast["dev"], site_a, title="<script>alert('x')</script>", description="<img src=x onerror=alert(1)>"
    )
    client = client_for(cast["dev"])
    for url in (detail_url(rfc), reverse("releases:list"), reverse("home")):
        body = client.get(url).content.decode()
        assert "<script>alert('x')</script>" not in body
        assert "<img src=x onerror" not in body
    assert "&lt;script&gt;" in client.get(detail_url(rfc)).content.decode()


# --- Evidence ----------------------------------------------------------------------------------
def test_evidence_upload_download_and_preview(cast, site_a, media):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["dev"])
    url = reverse("releases:evidence_add", args=[rfc.uuid])
    response = client.post(
        url, {"file": factories.png("line2.png"), "kind": "screenshot", "description": "Line 2"}
    )
    assert response.status_code == 302
    evidence = Evidence.objects.get(rfc=rfc)
    download = client.get(reverse("releases:evidence_download", args=[rfc.uuid, evidence.uuid]))
    assert download.status_code == 200
    assert (
        download["Content-Disposition"].startswith("attachment;")
        and "line2.png" in download["Content-Disposition"]
    )
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    assert b"".join(download.streaming_content) == factories.PNG
    preview = client.get(reverse("releases:evidence_preview", args=[rfc.uuid, evidence.uuid]))
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    assert preview["Content-Disposition"].startswith("inline")


def test_a_log_has_no_preview_and_a_bad_file_leaves_nothing(cast, site_a, media):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["dev"])
    url = reverse("releases:evidence_add", args=[rfc.uuid])
    client.post(url, {"file": factories.log(), "kind": "log"})
    log = Evidence.objects.get(rfc=rfc)
    assert client.get(reverse("releases:evidence_preview", args=[rfc.uuid, log.uuid])).status_code == 404
    bad = client.post(
        url, {"file": SimpleUploadedFile("x.png", b"<script>alert(1)</script>"), "kind": "screenshot"}
    )
    assert bad.status_code == 400 and "not a PNG file" in bad.content.decode()
    assert Evidence.objects.filter(rfc=rfc).count() == 1
    assert sorted(p.name for p in (media / "evidence").iterdir()) == [log.stored_name]


def test_evidence_of_an_invisible_rfc_is_404(cast, site_b):
    rfc = factories.rfc(cast["dev"], site_b)
    evidence = factories.png()
    client_for(cast["dev"]).post(
        reverse("releases:evidence_add", args=[rfc.uuid]), {"file": evidence, "kind": "screenshot"}
    )
    item = Evidence.objects.get(rfc=rfc)
    response = client_for(cast["itmanager_a"]).get(
        reverse("releases:evidence_download", args=[rfc.uuid, item.uuid])
    )
    assert response.status_code == 404


# --- UAT sign-off ------------------------------------------------------------------------------
def test_key_user_signs_off_from_the_page(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["tester"])
    url = reverse("releases:signoff", args=[rfc.uuid])
    assert 'data-testid="signoff-form"' in client.get(detail_url(rfc)).content.decode()
    # X5: nothing is signed off in UAT that never succeeded there.
    unproven = client.post(
        url, {"site": site_a.code, "comment": "Printed 50 labels", "files": [factories.png()]}
    )
    assert unproven.status_code == 422 and "has not succeeded in PLA UAT yet" in unproven.content.decode()
    assert not UatSignoff.objects.exists()
    factories.promote(rfc, site_a)
    no_file = client.post(url, {"site": site_a.code, "comment": "All fine"})
    assert no_file.status_code == 400 and "Attach at least one evidence file" in no_file.content.decode()
    response = client.post(
        url, {"site": site_a.code, "comment": "Printed 50 labels", "files": [factories.png()]}
    )
    assert response.status_code == 302
    signoff = UatSignoff.objects.get(rfc=rfc)
    assert signoff.signed_by == cast["tester"] and signoff.evidence.count() == 1


def test_author_cannot_sign_off_their_own_rfc(cast, site_a):
    author = make_user("devkey", Role.DEVELOPER, Role.KEY_USER)
    rfc = factories.rfc(author, site_a)
    client = client_for(author)
    assert 'data-testid="signoff-form"' not in client.get(detail_url(rfc)).content.decode()
    response = client.post(
        reverse("releases:signoff", args=[rfc.uuid]),
        {"site": site_a.code, "comment": "Mine", "files": [factories.png()]},
    )
    assert response.status_code == 403 and not UatSignoff.objects.exists()


# --- List, navigation and home -------------------------------------------------------------------
def test_list_filters(cast, site_a, site_b):
    a = factories.rfc(cast["dev"], site_a, title="Printer timeout")
    # q searches the description too (the page and the API share RfcFilterSet): b's own words.
    b = factories.rfc(
        cast["releasemgr"],
        site_b,
        title="Scale driver",
        version="1.0.2",
        description="The scale on line 1 drops readings.",
    )
    client = client_for(cast["dev"])
    url = reverse("releases:list")

    def numbers(**params):
        body = client.get(url, params).content.decode()
        return {rfc.number for rfc in (a, b) if rfc.number in body}

    assert numbers() == {a.number, b.number}
    assert numbers(site=site_b.code) == {b.number}
    assert numbers(q="printer") == {a.number}
    assert numbers(mine="on") == {a.number}
    assert numbers(author="releasemgr") == {b.number}
    assert numbers(change_class="patch") == {a.number, b.number}
    assert numbers(change_class="major") == set()
    assert numbers(state="submitted") == set()
    assert numbers(state="open") == {a.number, b.number}


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _bulk_rfcs(author, release, sites, count: int) -> None:
    """Many RFCs at once for the growth test (the services build the first ten one by one)."""
    start = Rfc.objects.count()
    rfcs = Rfc.objects.bulk_create(
        [
            Rfc(
                number=f"RFC-2099-{start + n:04d}",
                title=f"Bulk change {n}",
                description="d",
                release=release,
                change_class="patch",
                rollback_plan="r",
                author=author,
            )
            for n in range(count)
        ]
    )
    Impact.objects.bulk_create([Impact(rfc=rfc, site=site, lines=["L1"]) for rfc in rfcs for site in sites])


def test_list_and_home_queries_are_equal_for_10_and_500_rfcs(cast, site_a, site_b):
    client = client_for(cast["releasemgr"])
    release = factories.release(cast["dev"], "1.0.1")
    for _ in range(10):
        factories.rfc(cast["dev"], site_a, release=release)
    urls = [reverse("releases:list"), reverse("releases:list") + "?state=open&page=2", reverse("home")]
    few = [_queries(client, url) for url in urls]
    _bulk_rfcs(cast["dev"], release, [site_a, site_b], 490)
    assert Rfc.objects.count() == 500
    assert [_queries(client, url) for url in urls] == few


def test_detail_queries_do_not_grow_with_evidence(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    factories.promote(rfc, site_a)
    client = client_for(cast["dev"])
    services_add = reverse("releases:evidence_add", args=[rfc.uuid])
    client.post(services_add, {"file": factories.log(), "kind": "log"})
    client_for(cast["tester"]).post(
        reverse("releases:signoff", args=[rfc.uuid]),
        {"site": site_a.code, "comment": "ok", "files": [factories.png()]},
    )
    few = _queries(client, detail_url(rfc))
    for n in range(10):
        client.post(services_add, {"file": factories.log(f"run{n}.log"), "kind": "log"})
    assert Evidence.objects.filter(rfc=rfc).count() == 12
    assert _queries(client, detail_url(rfc)) == few


def test_navigation_by_role(cast):
    def labels(user):
        body = client_for(user).get(reverse("home")).content.decode()
        return [
            label
            for label in ("RFCs", "Approvals", "Audit trail", "Administration")
            if f">{label}</a>" in body
        ]

    assert labels(cast["dev"]) == ["RFCs"]
    assert labels(cast["itmanager"]) == ["RFCs", "Approvals"]
    assert labels(cast["admin"]) == ["RFCs", "Audit trail", "Administration"]


def test_home_shows_each_role_its_work(cast, site_a):
    draft = factories.rfc(cast["dev"], site_a, title="Needs UAT")
    ready = factories.ready_rfc(cast["dev"], cast["tester"], site_a, title="Ready one", version="1.0.2")
    client_for(cast["dev"]).post(reverse("releases:transition", args=[ready.uuid, "submit"]))
    tester_home = client_for(cast["tester"]).get(reverse("home")).content.decode()
    assert draft.number in tester_home and ready.number not in tester_home
    manager_home = client_for(cast["itmanager"]).get(reverse("home")).content.decode()
    assert 'data-testid="home-approve"' in manager_home and ready.number in manager_home
    dev_home = client_for(cast["dev"]).get(reverse("home")).content.decode()
    assert draft.number in dev_home and ready.number in dev_home


def test_the_timeline_reads_in_utc_in_time_order_with_actions_in_words(cast, site_a, settings):
    """Audit (L1) on the RFC page: events and comments in one list in time order, a comment after an
    event of the same instant, each time in UTC whatever the portal's zone, each action in words with
    its code in the markup."""
    from datetime import UTC, datetime

    import time_machine

    from discussion import services as discussion

    settings.TIME_ZONE = "America/Chicago"
    with time_machine.travel(datetime(2026, 12, 10, 12, 0, 5, tzinfo=UTC), tick=False):
        rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
        client_for(cast["dev"]).post(reverse("releases:transition", args=[rfc.uuid, "submit"]))
        discussion.add(cast["tester"], rfc, "Labels print fine on line 2.")
    page = client_for(cast["dev"]).get(detail_url(rfc)).content.decode()
    timeline = page[page.index('data-testid="timeline"') :]
    stamp = '<time datetime="2026-12-10T12:00:05Z">2026-12-10 12:00:05 UTC</time>'
    submitted = timeline.index('data-action="releases.rfc.submitted">RFC submitted</span>')
    comment = timeline.index("Labels print fine on line 2.")
    assert submitted < comment
    assert timeline[:submitted].rfind(stamp) > -1 and timeline[submitted:comment].count(stamp) >= 1
    assert "06:00:05" not in timeline  # not Chicago's time
