"""A release's artifact is validated when it is recorded (X5, FAULTS 16): archives are read by their
directory only and refused past their bounds, and the installers that will install it dry-run it first.
A refusal is a 400 and stores nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from demo_plant.artifacts import build as build_artifacts
from demo_plant.install import sha256_of
from demo_plant.portal import pipeline as demo_pipeline
from environments.models import Environment
from releases import services
from releases.models import Release
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]
GOOD = {"product": "MES", "version": "2.4.1", "label_delay_ms": 60, "broken": False}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def stored(settings) -> list[str]:
    folder = Path(settings.MEDIA_ROOT) / "artifacts"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def upload(user, name: str, content: bytes, version: str = "2.4.1", product: str = "MES"):
    return services.create_release(
        user, product=product, version=version, artifact=SimpleUploadedFile(name, content)
    )


def zipped(entries: list[tuple[str, bytes]], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def tarred(entries: list[tuple[str, bytes]], *, mode: str = "w:gz", link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
    return buffer.getvalue()


RELEASE_JSON = ("release.json", json.dumps(GOOD).encode())


def refused(user, settings, name: str, content: bytes, says: str, **extra) -> None:
    with pytest.raises(ValidationError) as refusal:
        upload(user, name, content, **extra)
    text = " ".join(refusal.value.message_dict["artifact"])
    assert says in text, text
    assert Release.objects.count() == 0 and stored(settings) == []


# --- The zip-bomb class (FAULTS 16) ------------------------------------------------------------------
def test_a_zip_bomb_is_refused_from_its_directory_and_nothing_is_stored(cast, settings):
    """X5, FAULTS 16: an entry that expands a thousandfold is refused before anything is extracted."""
    bomb = zipped([RELEASE_JSON, ("filler.bin", b"\0" * (4 * 1024 * 1024))])
    assert len(bomb) < 20_000
    refused(cast["dev"], settings, "mes.zip", bomb, "a compression bomb is refused")


def test_the_expanded_size_and_the_entry_count_are_bounded(cast, settings):
    """X5, FAULTS 16: the total size once expanded (ARTIFACT_MAX_EXPANDED_BYTES) and the number of
    entries are limits of their own, whatever the ratio."""
    settings.ARTIFACT_MAX_EXPANDED_BYTES = 10_000
    incompressible = os.urandom(20_000)
    refused(
        cast["dev"],
        settings,
        "mes.zip",
        zipped([RELEASE_JSON, ("lib.bin", incompressible)]),
        "expands to more than 10,000 bytes",
    )
    settings.ARTIFACT_MAX_EXPANDED_BYTES = 1024**3
    settings.ARTIFACT_MAX_ENTRIES = 3
    many = zipped([RELEASE_JSON, *[(f"doc/{n}.txt", b"page") for n in range(5)]])
    refused(cast["dev"], settings, "mes.zip", many, "more than 3 entries")


def test_a_tar_gz_bomb_is_refused(cast, settings):
    """X5, FAULTS 16: a .tar.gz is read header by header; one that expands far past its size is refused."""
    bomb = tarred([RELEASE_JSON, ("filler.bin", b"\0" * (4 * 1024 * 1024))])
    refused(cast["dev"], settings, "mes.tar.gz", bomb, "a compression bomb is refused")


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("mes.zip", zipped([RELEASE_JSON, ("../../etc/cron.d/x", b"* * * * * root sh")]), "climbs out"),
        ("mes.zip", zipped([RELEASE_JSON, ("..\\..\\web.config", b"<x/>")]), "climbs out"),
        ("mes.zip", zipped([RELEASE_JSON, ("/etc/passwd", b"root")]), "absolute path"),
        ("mes.zip", zipped([RELEASE_JSON], symlink="app/current"), "symbolic link"),
        ("mes.zip", zipped([RELEASE_JSON, ("inner.zip", zipped([RELEASE_JSON]))]), "another archive"),
        ("mes.tar.gz", tarred([RELEASE_JSON, ("../x", b"x")]), "climbs out"),
        ("mes.tar", tarred([RELEASE_JSON], mode="w", link="app/current"), "link"),
    ],
    ids=["zip-slip", "zip-slip-backslash", "absolute", "zip-symlink", "nested", "tar-slip", "tar-symlink"],
)
def test_paths_that_leave_the_archive_links_and_nested_archives_are_refused(
    cast, settings, name, content, says
):
    """X5, FAULTS 14, 16: no absolute path, no `..`, no link, no archive inside the archive."""
    refused(cast["dev"], settings, name, content, says)


# --- The installer's dry run (X5) ---------------------------------------------------------------------
def wire(site, apply: list[dict]) -> None:
    for env in Environment.objects.filter(site=site):
        env.pipeline = {**env.pipeline, "apply": apply}
        env.save(update_fields=["pipeline"])


def script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_an_installer_that_refuses_the_artifact_refuses_the_upload_with_its_output(cast, site_a, settings):
    """X5: the apply command's dry run is asked at recording, with the release's variables; a non-zero
    exit refuses the upload with what the installer said, and nothing is stored."""
    check = (
        "import os, sys; print('format 7 expected, got', os.environ['PCC_RELEASE_VERSION'], "
        "len(os.environ['PCC_ARTIFACT_SHA256']), os.path.exists(os.environ['PCC_ARTIFACT_PATH'])); sys.exit(3)"
    )
    wire(site_a, [{"adapter": "command", "command": ["true"], "dry_run": script(check), "product": "MES"}])
    refused(
        cast["dev"],
        settings,
        "mes.json",
        json.dumps(GOOD).encode(),
        "exit 3): format 7 expected, got 2.4.1 64 True",
    )


def test_a_dry_run_for_another_product_is_not_asked(cast, site_a):
    """X5: `"product"` limits a dry run to the releases its installer installs."""
    wire(site_a, [{"adapter": "command", "command": ["true"], "dry_run": ["false"], "product": "ERP"}])
    release = upload(cast["dev"], "mes.json", json.dumps(GOOD).encode())
    event = AuditEvent.objects.get(action="releases.release.created")
    assert event.after["artifact_checked"] == {"archive": None, "dry_runs": []}
    assert release.artifact_sha256


def test_the_api_answers_a_refused_artifact_with_400(cast, site_a, settings):
    """X5: over the API the refusal is a 400 naming the artifact; nothing is stored."""
    wire(
        site_a,
        [{"adapter": "command", "command": ["true"], "dry_run": script("print('unreadable'); exit(2)")}],
    )
    response = api_client_for(cast["dev"]).post(
        "/api/v1/releases/",
        {"product": "MES", "version": "2.4.1", "artifact": SimpleUploadedFile("mes.json", b"{}")},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert "unreadable" in json.dumps(response.json())
    assert Release.objects.count() == 0 and stored(settings) == []


def test_the_demo_artifacts_pass_the_demo_installers_check_once_per_distinct_command(cast, site_a, tmp_path):
    """X5: with the demo pipeline on DEV, UAT and PROD, the good artifact (JSON, and zipped) is accepted;
    the same installer is asked once, not once per environment."""
    for env in Environment.objects.filter(site=site_a):
        env.pipeline = demo_pipeline(tmp_path / "plant", site_a.code, env.tier, "http://127.0.0.1:8100")
        env.save(update_fields=["pipeline"])
    artifacts = build_artifacts(tmp_path / "artifacts")
    release = upload(cast["dev"], "mes-2.4.1.json", artifacts["good"].read_bytes())
    assert release.artifact_sha256 == sha256_of(artifacts["good"])
    checked = AuditEvent.objects.get(action="releases.release.created").after["artifact_checked"]
    assert len(checked["dry_runs"]) == 1 and "demo_plant.install --check" in checked["dry_runs"][0]
    as_zip = zipped([("mes/release.json", json.dumps({**GOOD, "version": "2.4.3"}).encode())])
    assert upload(cast["dev"], "mes-2.4.3.zip", as_zip, version="2.4.3").artifact_size == len(as_zip)
    with pytest.raises(ValidationError) as refusal:
        upload(cast["dev"], "mes-2.4.9.json", artifacts["good"].read_bytes(), version="2.4.9")
    assert "holds MES 2.4.1, not the release's 2.4.9" in str(refusal.value)


def test_an_artifact_held_by_url_is_recorded_without_a_dry_run(cast, site_a):
    """X5: a URL artifact has no file to dry-run: it is recorded, and the audit says it was not inspected
    (its first deployment, DEV by the promotion order, proves it; the worker checks its SHA-256)."""
    wire(site_a, [{"adapter": "command", "command": ["true"], "dry_run": ["false"]}])
    services.create_release(
        cast["dev"], product="MES", version="2.4.1", artifact_url="https://artifacts.plant.test/mes.zip",
        artifact_sha256="a" * 64,
    )  # fmt: skip
    event = AuditEvent.objects.get(action="releases.release.created")
    assert event.after["artifact_checked"].startswith("held by URL: not inspected")


# --- demo_plant.install --check --------------------------------------------------------------------------
def check(artifact: Path, version: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PCC_ARTIFACT_PATH": str(artifact)}
    env.pop("PCC_RELEASE_VERSION", None)
    if version:
        env["PCC_RELEASE_VERSION"] = version
    return subprocess.run(
        [sys.executable, "-m", "demo_plant.install", "--check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_demo_installer_checks_an_artifact_and_changes_nothing(tmp_path):
    """X5: `install --check` reads and validates the artifact and its version: exit 0 or 2, nothing written."""
    artifacts = build_artifacts(tmp_path / "artifacts")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = check(artifacts["good"], "2.4.1")
    assert done.returncode == 0 and "artifact OK: MES 2.4.1" in done.stdout
    assert check(artifacts["bad"]).returncode == 0  # broken on purpose, but installable
    wrong = check(artifacts["good"], "2.5.0")
    assert wrong.returncode == 2 and "holds MES 2.4.1, not the release's 2.5.0" in wrong.stderr
    garbage = tmp_path / "artifacts" / "garbage.json"
    garbage.write_text("{not json")
    assert check(garbage).returncode == 2
    erp = tmp_path / "artifacts" / "erp.json"
    erp.write_text(json.dumps({**GOOD, "product": "ERP"}))
    assert check(erp).returncode == 2 and "not MES" in check(erp).stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([*before, "garbage.json", "erp.json"])
