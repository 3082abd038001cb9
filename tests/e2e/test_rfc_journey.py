"""The main journey, in a real browser against a live portal and a real worker.

A developer records a release and files a feature (minor) RFC with evidence (R1–R5), is refused
submission while UAT is not signed off (C5), a key user signs off UAT with a file (R6, R9), the
developer submits; a real Celery worker emails the IT Manager a link (A5); the manager opens it,
logs in, comes back and signs with the password (§11.200); the worker then emails the Operations
Manager, who does the same; the RFC is approved with both signatures shown (§11.50).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from approvals.models import Signature
from environments.models import Site
from releases.models import Rfc
from tests import factories
from tests.e2e.conftest import demo_password, login, logout, screenshot
from tests.workers import celery_worker, wait_until

pytestmark = pytest.mark.browser

PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def approval_link_for(mail_dir: Path, address: str, number: str) -> str | None:
    """The newest approval link mailed to `address` for RFC `number` (files and messages in order)."""
    found = None
    for path in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime):
        for chunk in path.read_text(errors="replace").split("-" * 79):
            if not chunk.strip():
                continue
            message = email.message_from_string(chunk.strip(), policy=email.policy.default)
            if address in (message["to"] or "") and number in (message["subject"] or ""):
                match = re.search(
                    r"https?://\S+/approvals/link/[\w-]+/", message.get_body(("plain",)).get_content()
                )
                if match:
                    found = match.group(0)
    return found


def test_file_sign_off_submit_and_approve_from_the_emailed_link(page, portal, tmp_path):
    password = demo_password()
    # A zip the demo plant's installer accepts: it holds the release.json of MES 2.5.0 (X5).
    artifact = tmp_path / "mes-2.5.0.zip"
    with zipfile.ZipFile(artifact, "w") as archive:
        archive.writestr(
            "mes-2.5.0/release.json",
            json.dumps({"product": "MES", "version": "2.5.0", "label_delay_ms": 60, "broken": False}),
        )
    shot = tmp_path / "line2.png"
    shot.write_bytes(PIXEL)

    # --- The developer records the release and files the RFC ---------------------------------
    login(page, portal, "dev", password)
    page.get_by_role("link", name="RFCs", exact=True).click()
    expect(page.get_by_test_id("rfc-row")).to_have_count(10)  # the demo's RFCs
    page.get_by_role("link", name="Number").click()  # sorted by number, then the other way round
    expect(page.get_by_role("columnheader", name="Number")).to_have_attribute("aria-sort", "ascending")
    first = page.get_by_test_id("rfc-row").first.locator("strong").inner_text()
    page.get_by_role("link", name="Number").click()
    expect(page.get_by_role("columnheader", name="Number")).to_have_attribute("aria-sort", "descending")
    assert page.get_by_test_id("rfc-row").last.locator("strong").inner_text() == first
    screenshot(page, "rfc-list")
    page.get_by_role("link", name="File an RFC").click()
    page.get_by_role("link", name="Record a new release").click()
    page.get_by_label("Product").fill("MES")
    page.get_by_label("Version").fill("2.5.0")
    page.get_by_label("Release notes").fill("Label printer retries twice before raising an alarm.")
    page.get_by_label("Artifact", exact=True).set_input_files(str(artifact))
    page.get_by_role("button", name="Record release").click()
    expect(page.get_by_role("status")).to_contain_text("Release MES 2.5.0 recorded with SHA-256")

    page.get_by_label("Title").fill("Label printer retries on Berlin line 2")
    page.get_by_label("Description").fill("Two retries before the alarm; fewer false stops on line 2.")
    expect(page.get_by_label("Release", exact=True)).to_have_value(re.compile(r"\d+"))
    page.get_by_label("BER — ").check()
    expect(page.get_by_test_id("classify")).to_contain_text("Minor (feature)")
    page.get_by_test_id("impact-BER").get_by_label("Affected lines").fill("Line 2")
    page.get_by_test_id("impact-BER").get_by_label("Affected modules").fill("Labelling")
    page.get_by_label("Rollback plan").fill("Redeploy MES 2.3.1 from the artifact store.")
    risk = page.get_by_test_id("risk-questions")
    for question, answer in [("GxP impact", "None"), ("Safety impact", "None"), ("Production impact", "Low")]:
        risk.get_by_role("group", name=re.compile(question)).get_by_label(answer).check()
    for key in ("rollback", "novelty"):
        risk.locator(f'input[name="risk_{key}"][value="0"]').check()
    screenshot(page, "rfc-form-filled")
    page.get_by_role("button", name="File as draft").click()
    expect(page.get_by_test_id("rfc-state")).to_have_text("Draft")
    expect(page.get_by_test_id("rfc-class")).to_have_text("Minor (feature)")
    expect(page.get_by_test_id("risk-level")).to_have_text("Low risk")
    number = page.locator(".rfc-number").inner_text().strip()

    evidence = page.get_by_test_id("evidence-form")
    evidence.get_by_label("Files", exact=True).set_input_files(str(shot))
    evidence.get_by_label("Kind").select_option("screenshot")
    evidence.get_by_label("Description").fill("Line 2 label after the retry")
    evidence.get_by_role("button", name="Upload").click()
    expect(page.get_by_test_id("evidence-row")).to_have_count(1)
    expect(page.locator("img.thumb")).to_be_visible()

    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_test_id("action-error")).to_contain_text("UAT sign-off")
    screenshot(page, "rfc-submit-refused")
    logout(page)

    # --- The key user signs off UAT (the release succeeded in DEV and UAT: its journey is another test) --
    factories.promote(Rfc.objects.get(number=number), Site.objects.get(code="BER"))
    login(page, portal, "tester", password)
    screenshot(page, "home-key-user")
    page.get_by_test_id("home-signoff").get_by_role("link", name=number).click()
    form = page.get_by_test_id("signoff-form")
    form.get_by_label("Comment").fill("Printed 40 labels on UAT line 2 with the printer unplugged twice.")
    form.get_by_label("Evidence files").set_input_files(str(shot))
    form.get_by_role("button", name="Sign off UAT").click()
    expect(page.get_by_test_id("signoffs")).to_contain_text("Tomas Tester")
    logout(page)

    # --- The developer submits; a real worker emails the IT Manager --------------------------------
    mail_dir = Path(settings.EMAIL_FILE_PATH)
    shutil.rmtree(mail_dir, ignore_errors=True)
    login(page, portal, "dev", password)
    page.goto(f"{portal}/rfcs/?q={number}")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_test_id("gate").filter(has_text="UAT sign-off — ")).to_have_class("pass")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_test_id("rfc-state")).to_have_text("Submitted")
    expect(page.get_by_test_id("approval-chain")).to_contain_text("IT Manager")
    screenshot(page, "rfc-submitted")
    logout(page)

    with celery_worker("mailer", extra_env={"SITE_URL": portal}) as worker:
        from approvals.tasks import send_notifications

        send_notifications.delay()
        # --- The IT Manager opens the link: sign-in first, then straight back to the decision --------
        link = wait_for_link(worker, mail_dir, "itmanager@", number)
        assert link.startswith(portal + "/approvals/link/")
        page.goto(link)
        page.get_by_label("Username").fill("itmanager")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("sign-form")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_contain_text(number)
        page.get_by_label("Approve").check()
        page.get_by_label("Your password").fill(password + "-typo")
        page.get_by_role("button", name="Sign").click()
        expect(page.get_by_role("alert")).to_be_visible()
        page.get_by_label("Your password").fill(password)
        screenshot(page, "approval-sign-page")
        page.get_by_role("button", name="Sign").click()
        expect(page.get_by_test_id("rfc-state")).to_have_text("In approval")
        expect(page.get_by_test_id("signature")).to_contain_text("approved as IT Manager of BER")
        logout(page)

        # --- The worker emails the next step; the Operations Manager signs from that link ----------
        link = wait_for_link(worker, mail_dir, "opsmanager@", number)
        page.goto(link)
        page.get_by_label("Username").fill("opsmanager")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.get_by_label("Approve").check()
        page.get_by_label("Your password").fill(password)
        page.get_by_role("button", name="Sign").click()

    expect(page.get_by_test_id("rfc-state")).to_have_text("Approved")
    expect(page.get_by_test_id("signature")).to_have_count(2)
    expect(page.get_by_test_id("approval-chain")).to_contain_text("approved as Operations Manager of BER")
    screenshot(page, "rfc-approved")

    rfc = Rfc.objects.get(number=number)
    assert rfc.state == "approved"
    signatures = Signature.objects.filter(approval__rfc=rfc).order_by("signed_at")
    assert [(s.signer.username, s.via, s.printed_name) for s in signatures] == [
        ("itmanager", "email", "Ingrid Ito"),
        ("opsmanager", "email", "Omar Osei"),
    ]


def wait_for_link(worker, mail_dir: Path, address: str, number: str) -> str:
    try:
        return wait_until(lambda: approval_link_for(mail_dir, address, number), timeout=60)
    except AssertionError:
        raise AssertionError("worker log:\n" + "".join(worker.log[-40:])) from None
