"""Evidence: checked by content, size-limited, stored under generated names, never
deleted after submission — and bad uploads leave nothing behind."""

import hashlib
import os

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from core.errors import StateConflict
from plant.uploads import UploadRefused
from releases import services
from releases.models import Evidence, UatSignoff
from tests import factories
from workflow import services as wf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media) -> list[str]:
    folder = media / "evidence"
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.fixture
def draft(cast, site_a):
    return factories.rfc(cast["dev"], site_a)


def test_good_upload_is_hashed_and_stored_under_a_generated_name(cast, draft, media):
    content = factories.PNG
    evidence = wf.add_evidence(
        cast["dev"], draft, SimpleUploadedFile("line2.png", content), "screenshot", "Label preview"
    )
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.content_type == "image/png" and evidence.size == len(content)
    assert stored_files(media) == [evidence.stored_name]
    assert "line2" not in evidence.stored_name and len(evidence.stored_name) == 32
    event = AuditEvent.objects.get(action="releases.evidence.added")
    assert event.after["sha256"] == evidence.sha256


BAD = [
    ("report.pdf", b"<!doctype html><html><script>alert(1)</script></html>", "not a PDF"),
    ("chart.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not accepted"),
    ("notes.txt", b"<svg onload=alert(1)>", "HTML, SVG or script"),
    ("run.log", b"ok\n<script>fetch('/x')</script>", "HTML, SVG or script"),
    ("screen.png", b"%PDF-1.7 fake", "application/pdf but is named .png"),
    ("tool.exe", b"MZ\x90\x00", "not accepted"),
    ("..\\win.log", b"x", "path"),
    ("a" * 150 + ".log", b"x", "longer than 150"),
    ("noextension", b"x", "extension"),
    ("binary.log", b"abc\x00def", "binary"),
    ("empty.log", b"", "empty"),
]


@pytest.mark.parametrize("name,content,message", BAD, ids=[b[2] + ":" + b[0][:20] for b in BAD])
def test_bad_uploads_are_refused_with_nothing_stored(cast, draft, media, name, content, message):
    with pytest.raises(UploadRefused, match=message):
        wf.add_evidence(cast["dev"], draft, SimpleUploadedFile(name, content), "log")
    assert Evidence.objects.count() == 0
    assert stored_files(media) == []
    assert not AuditEvent.objects.filter(action="releases.evidence.added").exists()


def test_a_name_with_a_path_is_refused(cast, draft, media):
    """Django's multipart parser already strips directories from an uploaded name; a name that
    still carries one (from any other caller) is refused, not cleaned."""
    upload = SimpleUploadedFile("x.log", b"root:x:0:0")
    upload._name = "../../etc/passwd.log"
    with pytest.raises(UploadRefused, match="path"):
        wf.add_evidence(cast["dev"], draft, upload, "log")
    assert Evidence.objects.count() == 0 and stored_files(media) == []


def test_over_the_size_limit_is_refused(cast, draft, media, settings):
    settings.EVIDENCE_MAX_BYTES = 1024
    with pytest.raises(UploadRefused, match="larger than the limit") as refused:
        wf.add_evidence(cast["dev"], draft, SimpleUploadedFile("big.log", b"x" * 1025), "log")
    assert refused.value.code == "too_large"
    assert Evidence.objects.count() == 0 and stored_files(media) == []


def test_script_beyond_the_first_block_is_caught_too(cast, draft, media):
    content = b"line\n" * 5000 + b"<script>alert(1)</script>"
    with pytest.raises(UploadRefused):
        wf.add_evidence(cast["dev"], draft, SimpleUploadedFile("long.log", content), "log")
    assert stored_files(media) == []


def test_failed_transaction_removes_the_stored_file(cast, draft, media):
    from releases.models import Rfc

    Rfc.objects.filter(pk=draft.pk).update(state="submitted")
    with pytest.raises(StateConflict):
        wf.add_evidence(cast["dev"], draft, factories.png(), "screenshot")
    assert stored_files(media) == []


def test_outsiders_cannot_add_evidence(cast, draft, site_b):
    from core.roles import Role
    from tests.conftest import make_user

    outsider = make_user("dev_b", Role.DEVELOPER, site=site_b)
    with pytest.raises(PermissionDenied):
        wf.add_evidence(outsider, draft, factories.png(), "screenshot")


def test_after_submission_evidence_is_superseded_never_deleted(cast, site_a, media):
    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    first = wf.add_evidence(cast["dev"], rfc, factories.log(), "log")
    wf.submit(cast["dev"], rfc)
    wf.transition(None, rfc, "reject", reason="Add the performance log")
    with pytest.raises(StateConflict, match="supersede"):
        wf.delete_evidence(cast["dev"], first)
    newer = wf.add_evidence(cast["dev"], rfc, factories.log("perf.log"), "log", supersedes=first)
    first.refresh_from_db()
    assert first.superseded_by == newer
    assert set(stored_files(media)) >= {first.stored_name, newer.stored_name}
    event = AuditEvent.objects.get(action="releases.evidence.superseded")
    assert event.before["sha256"] == first.sha256 and event.after["sha256"] == newer.sha256


def test_before_first_submission_a_draft_file_can_be_removed(
    cast, draft, media, django_capture_on_commit_callbacks
):
    evidence = wf.add_evidence(cast["dev"], draft, factories.log(), "log")
    with django_capture_on_commit_callbacks(execute=True):
        wf.delete_evidence(cast["dev"], evidence)
    assert Evidence.objects.count() == 0 and stored_files(media) == []
    assert AuditEvent.objects.filter(action="releases.evidence.deleted").exists()


# --- UAT sign-off (R6, R9) ----------------------------------------------------------------------
def test_key_user_signs_off_with_comment_and_evidence(cast, draft, site_a):
    signoff = services.sign_off_uat(cast["tester"], draft, site_a, "50 labels printed.", [factories.png()])
    assert signoff.evidence.get().kind == "signoff"
    assert UatSignoff.objects.get().signed_by == cast["tester"]
    event = AuditEvent.objects.get(action="releases.rfc.uat_signed_off")
    assert event.after["site"] == site_a.code and len(event.after["evidence"]) == 1


@pytest.mark.parametrize("comment,files,field", [("", ["png"], "comment"), ("Fine", [], "files")])
def test_signoff_needs_comment_and_a_file(cast, draft, site_a, comment, files, field):
    with pytest.raises(ValidationError) as refused:
        services.sign_off_uat(cast["tester"], draft, site_a, comment, [factories.png() for _ in files])
    assert field in refused.value.message_dict
    assert UatSignoff.objects.count() == 0


def test_author_cannot_sign_off_own_rfc_even_as_key_user(cast, site_a):
    from core.roles import Role
    from tests.conftest import make_user

    both = make_user("both", Role.DEVELOPER, Role.KEY_USER)
    rfc = factories.rfc(both, site_a)
    with pytest.raises(PermissionDenied, match="own RFC"):
        services.sign_off_uat(both, rfc, site_a, "I tested my own", [factories.png()])


def test_only_key_users_of_that_site_sign_off(cast, draft, site_a, site_b):
    from core.roles import Role
    from tests.conftest import make_user

    key_b = make_user("key_b", Role.KEY_USER, site=site_b)
    with pytest.raises(PermissionDenied):
        services.sign_off_uat(key_b, draft, site_a, "Not my plant", [factories.png()])
    with pytest.raises(PermissionDenied):
        services.sign_off_uat(cast["itmanager"], draft, site_a, "Not my role", [factories.png()])


def test_changing_the_release_voids_the_signoff(cast, site_a):
    from releases import gates

    rfc = factories.ready_rfc(cast["dev"], cast["tester"], site_a)
    assert all(g.passed for g in gates.evaluate(rfc))
    other = factories.release(cast["dev"], "1.0.2")
    updated = wf.update_rfc(cast["dev"], rfc, release=other)
    assert UatSignoff.objects.get().voided_at is not None
    failed = {g.name: g.reason for g in gates.evaluate(updated) if not g.passed}
    assert "UAT sign-off" in failed


def test_artifact_checksum_given_with_an_upload_must_match(cast, media):
    """X5: a pipeline that sends the file and its SHA-256 learns when the file changed in transit."""
    content = b"PK\x03\x04 mes-1.0.1"
    wrong = "0" * 64
    with pytest.raises(ValidationError, match="changed on its way"):
        services.create_release(
            cast["dev"],
            product="MES",
            version="1.0.1",
            artifact=SimpleUploadedFile("mes.zip", content),
            artifact_sha256=wrong,
        )
    assert not (media / "artifacts").exists() or os.listdir(media / "artifacts") == []
    release = services.create_release(
        cast["dev"],
        product="MES",
        version="1.0.1",
        artifact=SimpleUploadedFile("mes.zip", content),
        artifact_sha256=hashlib.sha256(content).hexdigest(),
    )
    assert release.artifact_sha256 == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    "impacts,message",
    [
        ([{"lines": ["Line 2"]}], "names its site"),
        (["PLA"], "names its site"),
        ([{"site": "PLA", "lines": "Line 2"}], "list of names"),
        ([{"site": "PLA", "lines": ["L" * 101]}], "at most 100 characters"),
        ([{"site": "PLA", "modules": ["Scanning\r\nInjected"]}], "on one line"),
        ([{"site": "PLA", "interfaces": [f"ERP {n}" for n in range(51)]}], "at most 50"),
    ],
)
def test_malformed_impacts_are_refused(cast, site_a, impacts, message):
    with pytest.raises(ValidationError, match=message):
        factories.rfc(cast["dev"], site_a, impacts=impacts)


def test_the_page_offers_remove_exactly_where_the_service_allows_it(cast, draft, site_a):
    """The RFC page asks the service's own rule (R6): the uploader or the author, a draft never
    submitted, and never a file that belongs to a UAT sign-off."""
    from tests.conftest import client_for

    own = wf.add_evidence(cast["tester"], draft, factories.log("tester.log"), "log")
    authors = wf.add_evidence(cast["dev"], draft, factories.log("author.log"), "log")
    services.sign_off_uat(cast["tester"], draft, site_a, "All fine.", [factories.png("signed.png")])
    signed = Evidence.objects.get(rfc=draft, original_name="signed.png")

    def offered(user) -> set[str]:
        page = client_for(user).get(f"/rfcs/{draft.uuid}/").content.decode()
        return {e.original_name for e in (own, authors, signed) if f"evidence/{e.uuid}/delete/" in page}

    assert offered(cast["tester"]) == {"tester.log"}
    assert offered(cast["dev"]) == {"tester.log", "author.log"}
    for evidence in (own, authors, signed):
        for user in (cast["tester"], cast["dev"]):
            allowed = services.may_delete_evidence(user, draft, evidence)
            assert allowed == (evidence.original_name in offered(user))
    with pytest.raises(StateConflict):
        wf.delete_evidence(cast["tester"], signed)
    with pytest.raises(PermissionDenied):
        wf.delete_evidence(cast["tester"], authors)
