"""Builders for releases and RFCs that go through the real service functions."""

from __future__ import annotations

import hashlib
import itertools

from django.core.files.uploadedfile import SimpleUploadedFile

from releases import services
from releases.models import Release
from workflow import services as wf

_counter = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def png(name: str = "screen.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PNG, content_type="image/png")


def log(name: str = "uat-run.log", text: str = "2026-11-20 10:01 PASS label printed\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def release(user, version: str = "1.0.1", product: str = "MES", **extra) -> Release:
    digest = hashlib.sha256(f"{product}{version}{next(_counter)}".encode()).hexdigest()
    return services.create_release(
        user,
        product=product,
        version=version,
        artifact_url=extra.pop("artifact_url", "https://artifacts.plant.test/mes.zip"),
        artifact_sha256=extra.pop("artifact_sha256", digest),
        **extra,
    )


def rfc(user, site, version: str = "1.0.1", **fields):
    rel = fields.pop("release", None) or release(user, version)
    defaults = {
        "title": "Raise label printer timeout",
        "description": "Printers on line 2 time out under load.",
        "release": rel,
        "rollback_plan": "Redeploy 1.0.0 and run undo.sql",
        "impacts": [{"site": site, "lines": ["Line 2"], "modules": ["Labelling"]}],
    }
    defaults.update(fields)
    return services.create_rfc(user, **defaults)


def ready_rfc(author, tester, site, **fields):
    """A draft that passes every submission gate."""
    item = rfc(author, site, **fields)
    services.sign_off_uat(tester, item, site, "Printed 50 labels on UAT line 2, all fine.", [png()])
    return item


SIGNERS = {
    "it_manager": "itmanager",
    "operations_manager": "opsmanager",
    "cio": "cio",
    "plant_director": "plantdirector",
}


def sign_chain(people: dict, rfc):
    """Submit the RFC and sign every pending approval, each by the person of `people` holding its role
    (the `people` fixture), with the password, as a person would."""
    from approvals.models import Approval, ApprovalState
    from releases.states import RfcState
    from tests.conftest import PASSWORD

    wf.submit(people["dev"], rfc)
    while (approval := Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING).first()) is not None:
        wf.sign(people[SIGNERS[approval.role]], approval, "approve", PASSWORD)
    rfc.refresh_from_db()
    assert rfc.state == RfcState.APPROVED
    return rfc
