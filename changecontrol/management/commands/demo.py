"""Demo data: one user per role, two plants in different time zones, releases and RFCs in several states.

Idempotent: running it again leaves the same state (and resets the demo passwords).
"""

import hashlib
import os
import tempfile
from datetime import time

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.services import record
from changecontrol import demo as demo_rfcs
from core.roles import Role
from demo_plant.artifacts import build
from demo_plant.layout import ensure_environment
from demo_plant.portal import pipeline
from environments import access
from environments.models import (
    TIER_DEFAULTS,
    ConfigurationItem,
    Dependency,
    DependencyKind,
    DeploymentWindow,
    Environment,
    ItemKind,
    ProductVersion,
    RolloutRing,
    Site,
    Tier,
)
from environments.roles_setup import ensure_role_groups
from releases import services
from releases.models import Release

USERS = [
    ("dev", "Dana", "Developer", Role.DEVELOPER),
    ("tester", "Tomas", "Tester", Role.KEY_USER),
    ("itmanager", "Ingrid", "Ito", Role.IT_MANAGER),
    ("opsmanager", "Omar", "Osei", Role.OPERATIONS_MANAGER),
    ("cio", "Carla", "Ivanova", Role.CIO),
    ("plantdirector", "Piet", "Dekker", Role.PLANT_DIRECTOR),
    ("releasemgr", "Rita", "Mendes", Role.RELEASE_MANAGER),
    ("auditor", "Arun", "Udeh", Role.AUDITOR),
    ("admin", "Alex", "Admin", Role.ADMIN),
]

SITES = [
    {
        "code": "BER",
        "name": "Berlin assembly plant",
        "timezone": "Europe/Berlin",
        "country": "DE",
        "subdivision": "BE",
        # Berlin runs its ERP through the portal too: each product has its own version per tier.
        "versions": {
            Tier.DEV: {"MES": "2.4.0", "ERP": "1.5.0"},
            Tier.UAT: {"MES": "2.4.0", "ERP": "1.5.0"},
            Tier.PROD: {"MES": "2.3.1", "ERP": "1.4.0"},
        },
    },
    {
        "code": "CHI",
        "name": "Chicago packaging plant",
        "timezone": "America/Chicago",
        "country": "US",
        "subdivision": "IL",
        "versions": {Tier.DEV: {"MES": "2.4.0"}, Tier.UAT: {"MES": "2.3.1"}, Tier.PROD: {"MES": "2.3.1"}},
    },
    # Open around the clock: the PROD flow can be shown on any day, at any hour.
    {
        "code": "OPEN",
        "name": "Demo line (open calendar)",
        "timezone": "Europe/Berlin",
        "country": "",
        "subdivision": "",
        "versions": {Tier.DEV: {"MES": "2.3.1"}, Tier.UAT: {"MES": "2.3.1"}, Tier.PROD: {"MES": "2.3.1"}},
        "open": True,
        "rollout_ring": RolloutRing.PILOT,  # a release reaches the demo line first (E10)
    },
    # DEV and PROD only (a valid and common configuration): releases go DEV → PROD, proven on DEV's copy.
    {
        "code": "LBL",
        "name": "Label service plant (DEV and PROD only)",
        "timezone": "Europe/Warsaw",
        "country": "PL",
        "subdivision": "",
        "versions": {Tier.DEV: {"MES": "2.3.1"}, Tier.PROD: {"MES": "2.3.1"}},
        "open": True,
    },
]
DEMO_ITEMS = [
    (ItemKind.LINE, "Line 1", "Labelling and packing"),
    (ItemKind.LINE, "Line 2", "Weighing"),
    (ItemKind.MODULE, "Labelling", "Label layouts and printing"),
    (ItemKind.MODULE, "Weighing", "Checkweigher integration"),
    (ItemKind.INTERFACE, "ERP orders", "Production orders from the ERP"),
    (ItemKind.PRODUCT, "MES", "The demo plant's MES"),
]
DEMO_SMOKE_DELAY_SECONDS = 20  # seconds in the demo; 15 minutes in a plant (X2)

# The fidelity register (issue 19): how each demo tier has the plant's external systems. Berlin's UAT
# only simulates its WMS (high criticality), so an RFC touching WMS needs the business to accept it.
REAL, TEST, SIM, REPLAY, ABSENT = (
    DependencyKind.REAL,
    DependencyKind.TEST_ENDPOINT,
    DependencyKind.SIMULATOR,
    DependencyKind.REPLAY,
    DependencyKind.ABSENT,
)
DEPENDENCIES = {
    "BER": [  # name, criticality, how UAT has it, note
        ("ERP", "high", TEST, "SAP QA client 200"),
        ("WMS", "high", SIM, "Vendor simulator: picks always succeed"),
        ("Supplier API", "medium", REPLAY, "Last week's PROD traffic, replayed"),
        ("Identity", "medium", REAL, ""),
        ("Historian", "low", ABSENT, ""),
        ("PLC gateway", "high", SIM, "Soft PLCs, no real line"),
    ],
    "CHI": [("ERP", "high", TEST, ""), ("WMS", "high", REAL, "Shared with PROD, test warehouse")],
}

RELEASES = [
    ("MES", "2.3.1", "Label printer driver timeout raised from 2 s to 5 s."),
    ("MES", "2.3.2", "Scanner input debounced by 150 ms on line 2."),
    ("MES", "2.4.0", "New downtime-reason screen for line operators."),
    ("MES", "3.0.0", "Order model reworked for multi-line scheduling (operator retraining)."),
]


class Command(BaseCommand):
    help = "Create or refresh the demo sites, environments, releases and one user per role."

    @transaction.atomic
    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or "demo"
        groups = ensure_role_groups()
        users = {}
        for username, first, last, role in USERS:
            user, created = User.objects.get_or_create(username=username)
            user.first_name, user.last_name = first, last
            user.email = f"{username}@plant.example"
            user.is_staff = role == Role.ADMIN
            user.is_active = True
            user.set_password(password)
            user.save()
            user.groups.set([groups[role]])
            access.forget(user)
            users[username] = user
            if created:
                record(
                    "accounts.user.created",
                    user,
                    actor_name="demo",
                    after={"username": username, "role": role.label},
                )

        for spec in SITES:
            site, created = Site.objects.update_or_create(
                code=spec["code"],
                defaults={
                    **{key: spec[key] for key in ("name", "timezone", "country", "subdivision")},
                    "rollout_ring": spec.get("rollout_ring", RolloutRing.STANDARD),
                },
            )
            if created:
                record("environments.site.created", site, actor_name="demo", after={"code": site.code})
                if spec.get("open"):
                    self.open_calendar(site)
            for tier, versions in spec["versions"].items():
                env, env_created = Environment.objects.get_or_create(
                    site=site,
                    tier=tier,
                    defaults={**TIER_DEFAULTS[tier], "equipment_writes": tier == Tier.PROD},
                )
                for product, version in versions.items():  # a product missing here is added, none reset
                    ProductVersion.objects.get_or_create(
                        environment=env, product=product, defaults={"version": version}
                    )
                if env_created:
                    record("environments.environment.created", env, actor_name="demo", after=env.snapshot())
                self.connect_plant(env, versions["MES"])  # the demo plant stands in for the MES

        for product, version, notes in RELEASES:
            release, created = Release.objects.get_or_create(
                product=product,
                version=version,
                defaults={
                    "notes": notes,
                    "created_by": users["dev"],
                    "artifact_sha256": hashlib.sha256(f"{product}-{version}".encode()).hexdigest(),
                },
            )
            if created:
                record("releases.release.created", release, actor_name="demo", after={"version": version})

        self.plant_releases(users["dev"])
        self.masking_and_refresh()
        self.configuration_items()
        self.fidelity_register()
        rfcs = demo_rfcs.seed(users)
        demo_rfcs.plan_rollout(users["releasemgr"])
        demo_rfcs.standard_change(users, password)
        self.computed_evidence()
        self.terminals()

        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {len(USERS)} users ({', '.join(u[0] for u in USERS)}), password "
                f"{'from DEMO_PASSWORD' if os.environ.get('DEMO_PASSWORD') else 'demo'}; "
                f"sites {', '.join(s['code'] for s in SITES)}; {len(rfcs)} new demo RFCs."
            )
        )

    def terminals(self) -> None:
        """Berlin's shop-floor terminals as they last reported: two on PROD's MES, one left behind."""
        from environments.models import Terminal

        env = Environment.objects.get(site__code="BER", tier=Tier.PROD)
        active = env.versions.get("MES", "")
        if not active:
            return
        major, minor, patch = (int(part) for part in active.split(".")[:3])
        older = f"{major}.{minor}.{max(patch - 1, 0)}" if patch else f"{major}.{max(minor - 1, 0)}.0"
        for name, version in (
            ("line1-hmi-01", active),
            ("line2-hmi-01", active),
            ("line2-label-station", older),
        ):
            Terminal.objects.get_or_create(
                environment=env, name=name, product="MES", defaults={"version": version}
            )

    def fidelity_register(self) -> None:
        """Berlin's and Chicago's dependencies: PROD has each for real, UAT as DEPENDENCIES says (a row
        edited since is left as it is)."""
        for code, rows in DEPENDENCIES.items():
            for tier in (Tier.UAT, Tier.PROD):
                env = Environment.objects.get(site__code=code, tier=tier)
                for name, criticality, uat_kind, note in rows:
                    Dependency.objects.get_or_create(
                        environment=env,
                        name=name,
                        defaults={
                            "kind": uat_kind if tier == Tier.UAT else REAL,
                            "criticality": criticality,
                            "note": note if tier == Tier.UAT else "",
                        },
                    )

    def configuration_items(self) -> None:
        """The demo line's lines, modules and interfaces as records: its RFCs pick from them."""
        open_line = Site.objects.get(code="OPEN")
        for kind, name, description in DEMO_ITEMS:
            ConfigurationItem.objects.get_or_create(
                site=open_line, kind=kind, name=name, defaults={"description": description}
            )

    def masking_and_refresh(self) -> None:
        _masking_and_refresh()

    def computed_evidence(self) -> None:
        _computed_evidence()

    def open_calendar(self, site: Site) -> None:
        """Windows every day 00:00–24:00 (no minute between one day and the next, so the journeys do
        not depend on the time of day), no handovers, no Friday or quarter-close freeze."""
        site.windows.all().delete()
        site.handovers.all().delete()
        DeploymentWindow.objects.bulk_create(
            [DeploymentWindow(site=site, weekday=day, starts=time(0), ends=time(0)) for day in range(7)]
        )
        site.block_fridays, site.quarter_close_days = False, 0
        site.save(update_fields=["block_fridays", "quarter_close_days"])

    def connect_plant(self, env: Environment, version: str) -> None:
        """The environment deploys to the demo plant's copy of it (demo_plant/): created here, left as it is."""
        root = settings.VAR_DIR / "plant"
        ensure_environment(root, env.site.code, env.tier, version=version)
        if not env.pipeline:
            env.pipeline = pipeline(
                root,
                env.site.code,
                env.tier,
                settings.DEMO_PLANT_URL,
                smoke_delay_seconds=DEMO_SMOKE_DELAY_SECONDS,
            )
            env.save(update_fields=["pipeline"])

    def plant_releases(self, author) -> None:
        """Releases with real artifacts the demo plant installs: a good one, and one for each way the
        engine catches a bad one (smoke test, performance compare, business signal)."""
        with tempfile.TemporaryDirectory() as folder:
            built = build(folder)
            for key, version, notes in (
                ("good", "2.4.1", "Label layout v2: bigger batch number."),
                (
                    "bad",
                    "2.4.2",
                    "Label template rework (its template is missing: "
                    "the smoke test fails and it rolls back).",
                ),
                (
                    "slow",
                    "2.4.3",
                    "Label rendering with a slow font cache (10× slower: "
                    "the performance compare rolls it back).",
                ),
                (
                    "unconfirmed",
                    "2.4.6",
                    "ERP confirmation rework (labels print and the smoke test passes, but production "
                    "confirmations to the ERP fail: the signal 'ERP confirmations failed' rolls it back).",
                ),
            ):
                if Release.objects.filter(product="MES", version=version).exists():
                    continue
                services.create_release(
                    author,
                    product="MES",
                    version=version,
                    notes=notes,
                    artifact=SimpleUploadedFile(built[key].name, built[key].read_bytes()),
                    migration_sql=LAYOUT_SQL,
                    undo_sql=LAYOUT_UNDO,
                    flags=DEMO_FLAGS if key == "good" else [],
                )
            if not Release.objects.filter(product="MES-config", version="0.1.0").exists():
                # A change of configuration alone: its bundles' checksum is its artifact's.
                services.create_release(
                    author,
                    product="MES-config",
                    version="0.1.0",
                    notes="Scrap reason 03 (quality) mapped for the ERP; ERP confirmations in batches of five.",
                    config=DEMO_CONFIG,
                )


# The configuration-only release: two bundles, as the demo plant keeps them (demo_plant/layout.py).
DEMO_CONFIG = {
    "erp-settings": {
        "plant.code": "OPEN-1000",
        "currency": "EUR",
        "confirmation.batch_size": "5",
        "label.printer": "ZT410",
    },
    "integration-mappings": {
        "scrap.reason.01": "SCRAP-MAT",
        "scrap.reason.02": "SCRAP-SETUP",
        "scrap.reason.03": "SCRAP-QUALITY",
    },
}
# MES 2.4.1 brings two flags, off until a site turns them on (deployments/flags.py).
DEMO_FLAGS = [
    {"key": "bold_batch_number", "description": "Print the batch number in bold.", "safe": True},
    {
        "key": "erp_batch_confirmations",
        "description": "Post production confirmations to the ERP in batches of ten.",
        "safe": False,
    },
]
LAYOUT_SQL = "CREATE TABLE IF NOT EXISTS label_layouts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
LAYOUT_UNDO = "DROP TABLE IF EXISTS label_layouts;"


def _masking_and_refresh() -> None:
    """UAT refreshed from PROD with the operators' names masked, so the freshness gate has a real run."""
    from environments.models import MaskingRule
    from plant import evidence

    MaskingRule.objects.get_or_create(
        site=None, table="labels", column="text", defaults={"method": "fixed", "value": "masked label"}
    )
    # The recorded ERP messages come to UAT with the refresh, their sender masked like any column.
    MaskingRule.objects.get_or_create(
        site=None, table="erp_messages", column="sender", defaults={"method": "fixed", "value": "masked"}
    )
    from deployments import promotion

    for site in Site.objects.all():
        proving = promotion.proving(site.pk)  # UAT, or DEV where the site has no UAT
        if proving is None or (proving.data_refreshed_at and evidence.freshness(proving)[0]):
            continue
        evidence.run_refresh(evidence.request_refresh(None, proving).pk)
    for env in Environment.objects.exclude(pipeline={}).select_related("site"):
        evidence.record_fingerprint(env)  # drift between the tiers is shown from the start


def _computed_evidence() -> None:
    """The approved demo RFCs carry real idempotency checks, rollback rehearsals, replay
    reconciliations and parallel runs, run on the tier that proves them (UAT, or DEV at the
    DEV-and-PROD site)."""
    from deployments import checks
    from deployments.models import CheckKind, CheckRun
    from plant.plantdb import has_database
    from releases.models import Rfc

    for rfc in Rfc.objects.filter(state="approved").select_related("release"):
        # A release without SQL has its restore path rehearsed (with its RTO) like any other.
        for impact in rfc.impacts.select_related("site"):
            proving = checks.proving_of(impact.site)
            if not has_database(proving):
                continue
            for kind in CheckKind.values:
                if kind in checks.DECLARED and not checks.declares(proving, kind):
                    continue
                if not CheckRun.objects.filter(rfc=rfc, kind=kind, state="passed").exists():
                    checks.run_check(checks.request_check(None, rfc, kind, impact.site).pk)
