"""The demo plant: the MES stand-in the deployment engine deploys to, run for real."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from demo_plant.artifacts import build
from demo_plant.layout import ensure_environment
from tests.net import free_port

REPO = Path(__file__).resolve().parents[2]


def call(base: str, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def run_module(module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"demo_plant.{module}", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for tier in ("DEV", "PROD"):
        ensure_environment(tmp_path / "plant", "BER", tier)
    return tmp_path / "plant"


@pytest.fixture
def plant(root: Path):
    """The server in a subprocess on a free port; yields its base URL and always stops it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_plant.server", "--port", str(port), "--root", str(root)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if proc.poll() is not None:
                pytest.fail(f"demo plant exited early: {proc.stderr.read()}")
            try:
                if call(base, "/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("demo plant did not answer GET / in time")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def install(app_dir: Path, artifact: Path, sha256: str | None = None) -> subprocess.CompletedProcess:
    env = {"PCC_ARTIFACT_PATH": str(artifact)}
    if sha256 is not None:
        env["PCC_ARTIFACT_SHA256"] = sha256
    return run_module("install", "--app-dir", str(app_dir), **env)


def test_health_reports_the_running_version(plant):
    status, body = call(plant, "/BER/PROD/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "version": "2.3.1", "site": "BER", "tier": "PROD"}
    status, page = call(plant, "/")
    assert status == 200 and "BER" in page and "2.3.1" in page


def test_label_prints_and_writes_a_row_in_that_environments_database(plant, root):
    status, body = call(plant, "/BER/DEV/label", "POST", {"line": "Line 2"})
    assert status == 200 and "printed" in body
    assert json.loads(body) == {"printed": True, "label": 1, "version": "2.3.1"}
    with sqlite3.connect(root / "BER" / "DEV" / "mes.sqlite3") as conn:
        assert conn.execute("SELECT line FROM labels").fetchall() == [("Line 2",)]
    with sqlite3.connect(root / "BER" / "PROD" / "mes.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM labels").fetchone() == (0,)

    status, body = call(plant, "/BER/DEV/cycle", "POST")
    assert status == 200 and json.loads(body)["good_parts"] == 100


def test_installing_the_good_artifact_changes_the_version_at_once(plant, root, tmp_path):
    good = build(tmp_path / "artifacts")["good"]
    result = install(root / "BER" / "DEV" / "app", good, hashlib.sha256(good.read_bytes()).hexdigest())
    assert result.returncode == 0, result.stderr
    assert "2.4.1" in result.stdout
    assert json.loads(call(plant, "/BER/DEV/health")[1])["version"] == "2.4.1"
    assert json.loads(call(plant, "/BER/PROD/health")[1])["version"] == "2.3.1"


def test_installing_the_bad_artifact_breaks_label_printing(plant, root, tmp_path):
    bad = build(tmp_path / "artifacts")["bad"]
    assert install(root / "BER" / "DEV" / "app", bad).returncode == 0
    status, body = call(plant, "/BER/DEV/label", "POST")
    assert status == 500
    assert json.loads(body) == {"printed": False, "error": "label template missing"}
    assert call(plant, "/BER/DEV/cycle", "POST")[0] == 500


def test_install_reads_a_zip_artifact(root, tmp_path):
    artifact = tmp_path / "mes-2.4.1.zip"
    with zipfile.ZipFile(artifact, "w") as archive:
        archive.writestr(
            "mes/release.json",
            json.dumps({"product": "MES", "version": "2.4.1", "label_delay_ms": 20, "broken": False}),
        )
    assert install(root / "BER" / "DEV" / "app", artifact).returncode == 0
    assert json.loads((root / "BER" / "DEV" / "app" / "release.json").read_text())["version"] == "2.4.1"


def test_checksum_mismatch_exits_3_and_changes_nothing(root, tmp_path):
    good = build(tmp_path / "artifacts")["good"]
    release_file = root / "BER" / "DEV" / "app" / "release.json"
    before = release_file.read_bytes()
    result = install(release_file.parent, good, "0" * 64)
    assert result.returncode == 3
    assert "checksum mismatch" in result.stderr
    assert release_file.read_bytes() == before


def test_missing_artifact_exits_2_and_fail_flag_exits_1(root, tmp_path):
    app_dir = root / "BER" / "DEV" / "app"
    before = (app_dir / "release.json").read_bytes()
    missing = install(app_dir, tmp_path / "nope.json")
    assert missing.returncode == 2 and "not found" in missing.stderr
    failed = run_module("install", "--app-dir", str(app_dir), "--fail")
    assert failed.returncode == 1 and "install failed on purpose" in failed.stderr
    assert (app_dir / "release.json").read_bytes() == before


def test_equipment_writes_the_log_unless_simulated(root):
    env_dir = root / "BER" / "DEV"
    env = {k: v for k, v in os.environ.items() if k != "PCC_SIMULATION"}
    simulated = subprocess.run(
        [sys.executable, "-m", "demo_plant.equipment", "--env-dir", str(env_dir), "--recipe", "R-7"],
        cwd=REPO,
        env={**env, "PCC_SIMULATION": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert simulated.returncode == 0
    assert "SIMULATED: would push recipe R-7 to the line PLC" in simulated.stdout
    assert not (env_dir / "equipment.log").exists()

    real = subprocess.run(
        [sys.executable, "-m", "demo_plant.equipment", "--env-dir", str(env_dir), "--recipe", "R-7"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert real.returncode == 0 and "SIMULATED" not in real.stdout
    assert "pushed recipe R-7" in (env_dir / "equipment.log").read_text()


def test_unknown_environment_is_a_json_404(plant):
    for method, path in (
        ("GET", "/XYZ/PROD/health"),
        ("POST", "/BER/QA/label"),
        ("GET", "/BER/PROD/nope"),
        ("GET", "/../../etc/health"),
    ):
        status, body = call(plant, path, method)
        assert status == 404, path
        assert "error" in json.loads(body)


def test_malformed_release_is_a_json_500_and_the_server_keeps_running(plant, root):
    (root / "BER" / "DEV" / "app" / "release.json").write_text("{not json")
    status, body = call(plant, "/BER/DEV/health")
    assert status == 500 and "release.json" in json.loads(body)["error"]
    status, body = call(plant, "/BER/DEV/label", "POST")
    assert status == 500 and "error" in json.loads(body)
    assert call(plant, "/")[0] == 200
    assert call(plant, "/BER/PROD/health")[0] == 200


def test_layout_is_idempotent_and_keeps_an_installed_release(tmp_path):
    result = run_module("layout", "--root", str(tmp_path), "--sites", "BER,OPEN")
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*")) == [
        "BER/DEV",
        "BER/PROD",
        "BER/UAT",
        "OPEN/DEV",
        "OPEN/PROD",
        "OPEN/UAT",
    ]
    release_file = tmp_path / "OPEN" / "PROD" / "app" / "release.json"
    release_file.write_text(json.dumps({"version": "2.4.1", "label_delay_ms": 20, "broken": False}))
    ensure_environment(tmp_path, "OPEN", "PROD")
    assert json.loads(release_file.read_text())["version"] == "2.4.1"
    with pytest.raises(ValueError):
        ensure_environment(tmp_path, "..", "PROD")


def test_artifacts_match_the_demo_story(tmp_path):
    releases = {kind: json.loads(path.read_text()) for kind, path in build(tmp_path).items()}
    assert releases["good"] == {"product": "MES", "version": "2.4.1", "label_delay_ms": 60, "broken": False}
    assert releases["bad"]["broken"] is True
    assert releases["slow"]["label_delay_ms"] == 600
