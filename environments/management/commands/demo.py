"""Demo data: one user per role, two plants in different time zones, releases and RFCs in several states.

Idempotent: running it again leaves the same state (and resets the demo passwords).
"""

import hashlib
import os

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.services import record
from changecontrol import access
from changecontrol.roles import Role
from environments.models import TIER_DEFAULTS, Environment, Site, Tier
from environments.roles_setup import ensure_role_groups
from releases import demo as demo_rfcs
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
    {"code": "BER", "name": "Berlin assembly plant", "timezone": "Europe/Berlin", "country": "DE",
     "subdivision": "BE", "versions": {Tier.DEV: "2.4.0", Tier.UAT: "2.4.0", Tier.PROD: "2.3.1"}},
    {"code": "CHI", "name": "Chicago packaging plant", "timezone": "America/Chicago", "country": "US",
     "subdivision": "IL", "versions": {Tier.DEV: "2.4.0", Tier.UAT: "2.3.1", Tier.PROD: "2.3.1"}},
]

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
                record("accounts.user.created", user, actor_name="demo", after={"username": username, "role": role.label})

        for spec in SITES:
            site, created = Site.objects.update_or_create(
                code=spec["code"],
                defaults={key: spec[key] for key in ("name", "timezone", "country", "subdivision")},
            )
            if created:
                record("environments.site.created", site, actor_name="demo", after={"code": site.code})
            for tier, version in spec["versions"].items():
                env, env_created = Environment.objects.get_or_create(
                    site=site, tier=tier,
                    defaults={**TIER_DEFAULTS[tier], "active_version": version,
                              "equipment_writes": tier == Tier.PROD},
                )
                if env_created:
                    record("environments.environment.created", env, actor_name="demo", after=env.snapshot())

        for product, version, notes in RELEASES:
            release, created = Release.objects.get_or_create(
                product=product, version=version,
                defaults={"notes": notes, "created_by": users["dev"],
                          "artifact_sha256": hashlib.sha256(f"{product}-{version}".encode()).hexdigest()},
            )
            if created:
                record("releases.release.created", release, actor_name="demo", after={"version": version})

        rfcs = demo_rfcs.seed(users)

        self.stdout.write(self.style.SUCCESS(
            f"Demo ready: {len(USERS)} users ({', '.join(u[0] for u in USERS)}), password "
            f"{'from DEMO_PASSWORD' if os.environ.get('DEMO_PASSWORD') else 'demo'}; "
            f"sites {', '.join(s['code'] for s in SITES)}; {len(rfcs)} new demo RFCs."))
