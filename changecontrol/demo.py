"""Demo RFCs in several states, filed through the real service functions (DESIGN.md demo contract).

Idempotent: an RFC whose title exists already is left as it is.
"""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from approvals.models import Approval, ApprovalState
from core.roles import Role
from releases import services
from releases.models import Release, Rfc
from workflow import services as wf

# A 1x1 transparent PNG: real image bytes, so the preview shows something.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _png(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PIXEL, content_type="image/png")


def _log(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


DEMO_RFCS = [
    {
        "title": "Downtime-reason screen for Berlin line operators",
        "release": ("MES", "2.4.0"),
        "sites": {"BER": (["Line 1", "Line 2"], ["Downtime tracking"])},
        "description": "Operators pick a downtime reason on the line terminal instead of paper sheets.",
        "rollback_plan": "Redeploy MES 2.3.1 from the artifact store and run undo_2.4.0.sql.",
        "requested_timing": "Next Tuesday morning window",
        # Downtime books against ERP orders and holds WMS picks: Berlin's UAT only simulates the WMS.
        "dependencies": ["ERP", "WMS"],
        "then": "draft",
    },
    {
        "title": "Downtime-reason screen for Chicago packaging",
        "release": ("MES", "2.4.0"),
        "sites": {"CHI": (["Packaging 3"], ["Downtime tracking"])},
        "description": "Same screen as Berlin; UAT proven with the packaging key users.",
        "rollback_plan": "Redeploy MES 2.3.1 and run undo_2.4.0.sql.",
        "then": "in_approval",
    },
    {
        "title": "Order model for multi-line scheduling",
        "release": ("MES", "3.0.0"),
        "sites": {
            "BER": (["Line 1", "Line 2", "Line 3"], ["Orders", "Scheduling"]),
            "CHI": (["Packaging 1", "Packaging 3"], ["Orders"]),
        },
        "description": "Orders can be split across lines; planners schedule per line.",
        "rollback_plan": "Restore the pre-deployment database backup and redeploy MES 2.3.1.",
        "estimated_downtime_minutes": 45,
        "retraining_note": "Shift leads: 30-minute briefing on split orders before go-live.",
        # Scores 61 of 100 with two sites: high risk, so the business signs too and two key users test.
        "risk": {"gxp": 2, "production": 3, "rollback": 3, "novelty": 3},
        "then": "draft",
    },
    {
        "title": "Scanner debounce on Berlin line 2",
        "release": ("MES", "2.3.2"),
        "sites": {"BER": (["Line 2"], ["Scanning"])},
        "description": "Double scans on line 2 book parts twice; debounce the scanner input by 150 ms.",
        "rollback_plan": "Redeploy MES 2.3.1; no database change.",
        "then": "approved",
    },
    # DEV and PROD only: proven on DEV, signed off there, rehearsed by restoring DEV's snapshot.
    {
        "title": "Printer queue timeout on the label service",
        "release": ("MES", "2.3.2"),
        "sites": {"LBL": (["Label line"], ["Printing"])},
        "description": "The label service drops print jobs after 30 s in the queue; keep them 120 s.",
        "rollback_plan": "Redeploy MES 2.3.1; no database change (the snapshot is restored).",
        "then": "approved",
    },
    # On the always-open demo line: schedule these and watch one deploy, one roll back.
    {
        "title": "Label layout v2 on the demo line",
        "release": ("MES", "2.4.1"),
        "sites": {"OPEN": (["Line 1"], ["Labelling"])},
        "description": "Bigger batch number on the label; operators asked for it.",
        "rollback_plan": "Restore the application snapshot and the database backup taken before the apply.",
        "then": "approved",
    },
    # Ring 1 of the rollout of MES 2.4.1: the label service takes it once the demo line (ring 0, the
    # pilot) runs it, its review is done and it has soaked (workflow/rollout.py).
    {
        "title": "Label layout v2 on the label service",
        "release": ("MES", "2.4.1"),
        "sites": {"LBL": (["Label line"], ["Labelling"])},
        "description": "The bigger batch number, after the demo line has run it without trouble.",
        "rollback_plan": "Restore the application snapshot and the database backup taken before the apply.",
        "then": "approved",
    },
    {
        "title": "Label template rework on the demo line",
        "release": ("MES", "2.4.2"),
        "sites": {"OPEN": (["Line 1"], ["Labelling"])},
        "description": "New label template engine. (Demo: its template is missing, the smoke test fails.)",
        "rollback_plan": "Restore the application snapshot and the database backup taken before the apply.",
        "then": "approved",
    },
    {
        "title": "ERP confirmation rework on the demo line",
        "release": ("MES", "2.4.6"),
        "sites": {"OPEN": (["Line 1"], ["Labelling"])},
        "description": "Production confirmations posted to the ERP in batches. (Demo: labels print and the "
        "smoke test passes, but the confirmations fail: the business signal rolls it back.)",
        "rollback_plan": "Run the undo script and restore the application snapshot; production data is kept.",
        "then": "approved",
    },
    {
        "title": "Scrap reason mapping for the ERP on the demo line",
        "release": ("MES-config", "0.1.0"),
        "sites": {"OPEN": (["Line 1"], ["Labelling"])},
        "description": "Configuration only: map scrap reason 03 (quality) and confirm to the ERP in batches "
        "of five. The bundles are promoted DEV → UAT → PROD unchanged.",
        "rollback_plan": "The previous configuration files are put back; no database change.",
        "then": "approved",
    },
]
# The demo's routine changes: nothing at stake on any question.
LOW_RISK = {"gxp": 0, "safety": 0, "production": 1, "rollback": 0, "novelty": 0}
SIGNERS = {
    Role.IT_MANAGER: "itmanager",
    Role.OPERATIONS_MANAGER: "opsmanager",
    Role.CIO: "cio",
    Role.PLANT_DIRECTOR: "plantdirector",
}


def _proven(rfc: Rfc, site, user) -> None:
    """The demo's history: the release already succeeded in the site's DEV and UAT (X5), recorded as
    finished deployments with their audit events, so the key user may sign off. (The open demo line
    shows the road itself: deploy to DEV, then UAT, with the worker.)"""
    from datetime import timedelta

    from audit.services import record
    from core import clock
    from deployments.models import Deployment, DeploymentState
    from environments.models import Environment, Tier

    finished = clock.now() - timedelta(days=1)
    for env in Environment.objects.filter(site=site, tier__in=[Tier.DEV, Tier.UAT]).order_by("tier"):
        deployment = Deployment.objects.create(
            rfc=rfc,
            environment=env,
            scheduled_start=finished - timedelta(minutes=40),
            scheduled_end=finished,
            started_at=finished - timedelta(minutes=40),
            finished_at=finished,
            duration_minutes=30,
            state=DeploymentState.SUCCEEDED,
            scheduled_by=user,
            artifact_sha256=rfc.release.artifact_sha256,
            outcome="Deployed and verified (demo history).",
        )
        record(
            "releases.deployment.succeeded",
            deployment,
            actor_name="demo",
            after={"state": "succeeded", "environment": str(env), "outcome": deployment.outcome},
        )


def seed(users: dict) -> list[Rfc]:
    dev, tester = users["dev"], users["tester"]
    made = []
    for spec in DEMO_RFCS:
        if Rfc.objects.filter(title=spec["title"]).exists():
            continue
        product, version = spec["release"]
        rfc = services.create_rfc(
            dev,
            title=spec["title"],
            description=spec["description"],
            release=Release.objects.get(product=product, version=version),
            rollback_plan=spec["rollback_plan"],
            requested_timing=spec.get("requested_timing", ""),
            estimated_downtime_minutes=spec.get("estimated_downtime_minutes", 0),
            retraining_note=spec.get("retraining_note", ""),
            high_risk=spec.get("high_risk", False),
            risk_answers={**LOW_RISK, **spec.get("risk", {})},
            dependencies=spec.get("dependencies", []),
            impacts=[
                {"site": code, "lines": lines, "modules": modules}
                for code, (lines, modules) in spec["sites"].items()
            ],
        )
        wf.add_evidence(
            dev,
            rfc,
            _log("dev-test-run.log", "42 tests passed on DEV\n"),
            "test_report",
            "Automated test run on DEV",
        )
        if spec["then"] in ("in_approval", "approved"):
            for impact in rfc.impacts.all():
                _proven(rfc, impact.site, users["releasemgr"])
                wf.sign_off_uat(
                    tester,
                    rfc,
                    impact.site,
                    "Recorded 20 downtime reasons on UAT; all correct.",
                    [_png("uat-screen.png")],
                )
            wf.submit(dev, rfc)
            # The managers sign (demo seeding skips the password re-entry a person makes): the IT
            # manager only for "in approval", the whole chain for "approved".
            while (
                approval := Approval.objects.filter(rfc=rfc, state=ApprovalState.PENDING).first()
            ) is not None:
                wf.sign_verified(users[SIGNERS[Role(approval.role)]], approval, "approve", via="portal")
                if spec["then"] == "in_approval":
                    break
        made.append(rfc)
    return made


DEMO_SOAK_MINUTES = 30  # a day or more in a plant


def plan_rollout(release_manager) -> None:
    """MES 2.4.1 rolls out in two rings: the demo line (pilot), then the label service."""
    from environments.models import Site
    from releases.models import RolloutPlan
    from workflow import rollout

    release = Release.objects.get(product="MES", version="2.4.1")
    if RolloutPlan.objects.filter(release=release).exists():
        return
    rings = [
        (DEMO_SOAK_MINUTES, [Site.objects.get(code="OPEN")]),
        (DEMO_SOAK_MINUTES, [Site.objects.get(code="LBL")]),
    ]
    rollout.save_plan(release_manager, release, rings)


def standard_change(users: dict, password: str) -> None:
    """A pre-approved template for routine label work on the demo line and the label service."""
    from datetime import timedelta

    from approvals import standard
    from approvals.models import StandardChange
    from core import clock
    from environments.models import Site

    if StandardChange.objects.filter(name="Label template update").exists():
        return
    template = standard.propose(
        users["admin"],
        name="Label template update",
        description="Replace one label template of the MES label service; no database change. The printer "
        "service restarts in under 10 s; the smoke test prints a test label.",
        products=["MES"],
        sites=list(Site.objects.filter(code__in=["OPEN", "LBL"])),
        max_class="patch",
        expires_at=clock.now() + timedelta(days=365),
    )
    standard.sign(users["itmanager"], template, password)
