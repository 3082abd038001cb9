"""The `pcc` command line (issue 15 item 8), run as a separate process against a live portal with a
real API token: file an RFC, upload evidence, ask whether it may deploy, wait for an outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts import tokens
from deployments.states import DeploymentState as S
from releases.models import Evidence, Rfc
from releases.states import RfcState
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pcc(live_server, cast):
    _, secret = tokens.issue(cast["dev"], name="pipeline")

    def run(*args: str, token: str = secret, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PCC_URL": live_server.url, "PCC_TOKEN": token}
        return subprocess.run(
            [sys.executable, "-m", "pcc", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    return run


def test_file_an_rfc_and_upload_evidence(pcc, cast, site_a, tmp_path):
    release = factories.release(cast["dev"])
    filed = pcc(
        "--json", "rfc", "create", "--release", str(release.uuid), "--title", "Printer timeout",
        "--description", "Raise it to 30 s", "--site", site_a.code, "--line", "Line 2",
        "--module", "Labelling", "--rollback-plan", "Redeploy 1.0.0",
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    number = json.loads(filed.stdout)["number"]
    rfc = Rfc.objects.get(number=number)
    assert rfc.author == cast["dev"] and rfc.release == release
    report = tmp_path / "uat-run.log"
    report.write_text("2026-11-20 10:01 PASS label printed\n")
    uploaded = pcc("evidence", "upload", number, str(report), "--kind", "log", "--description", "UAT run")
    assert uploaded.returncode == 0, uploaded.stderr
    assert Evidence.objects.get(rfc=rfc).original_name == "uat-run.log"
    bad = pcc("evidence", "upload", number, str(tmp_path / "missing.log"), "--kind", "log")
    assert bad.returncode == 2 and "No such file" in bad.stderr


def test_may_deploy_exit_codes(pcc, cast, site_a):
    draft = factories.rfc(cast["dev"], site_a)
    failing = pcc("may-deploy", draft.number, "--stage", "submit")
    assert failing.returncode == 1, failing.stderr
    assert "FAIL  UAT sign-off" in failing.stdout and "gate(s) fail" in failing.stdout
    ready = factories.ready_rfc(cast["dev"], cast["tester"], site_a, version="1.0.2")
    passing = pcc("--json", "may-deploy", ready.number, "--stage", "submit")
    assert passing.returncode == 0, passing.stdout
    assert json.loads(passing.stdout)["ok"] is True


def test_wait_for_outcomes_and_time_out(pcc, cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    done = factories.booking(rfc, site_a, cast["releasemgr"], state=S.SUCCEEDED)
    back = factories.booking(rfc, site_a, cast["releasemgr"], state=S.ROLLED_BACK)
    waiting = factories.booking(rfc, site_a, cast["releasemgr"])
    assert pcc("wait", str(done.uuid)).returncode == 0
    rolled = pcc("wait", str(back.uuid))
    assert rolled.returncode == 1 and "rolled_back" in rolled.stdout
    timed_out = pcc("wait", str(waiting.uuid), "--timeout", "0", "--interval", "0")
    assert timed_out.returncode == 3 and "still scheduled" in timed_out.stderr
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.DEPLOYED)
    assert pcc("wait", rfc.number).returncode == 0


def test_errors_are_one_readable_line(pcc, cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    refused = pcc("may-deploy", rfc.number, token="not-a-token")
    assert refused.returncode == 2
    assert refused.stderr.startswith("pcc: GET /rfcs/") and "HTTP 401" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = pcc("wait", "RFC-2026-9999")
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr
    env = {k: v for k, v in os.environ.items() if k not in {"PCC_URL", "PCC_TOKEN"}}
    unconfigured = subprocess.run(
        [sys.executable, "-m", "pcc", "may-deploy", rfc.number],
        env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert unconfigured.returncode == 2 and "PCC_URL" in unconfigured.stderr
