"""Gates fail closed (C5, DESIGN principle 10): a computed-evidence gate that cannot run is a failing gate
whose reason says what to configure, never a silent pass. The tier that proves a release is the site's
UAT, or its DEV where the site has none (E1), and a release without SQL still has its rollback — the
restore of the backup and the application snapshot — rehearsed for real, with its RTO (R7, R8, C3, E3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core import clock
from deployments import checks, promotion
from deployments.models import CheckKind, CheckRun
from environments.models import Environment, Tier
from releases import gates
from tests import factories
from tests.conftest import client_for, make_site

pytestmark = pytest.mark.django_db

CONFIGURE = "add a sqlite or postgres backup adapter"
GUARDED_SQL = "CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY);"
UNDO = "DROP TABLE IF EXISTS layouts;"


def gate(rfc, name: str) -> gates.Gate:
    [found] = [g for g in gates.evaluate(rfc, "schedule") if g.name == name]
    return found


def release_with(cast, version: str, sql: str = "", undo: str = ""):
    return factories.release_with_sql(cast["dev"], version, sql, undo)


def without_database(site, tier: str) -> Environment:
    env = Environment.objects.get(site=site, tier=tier)
    env.pipeline = {key: value for key, value in env.pipeline.items() if key != "backup"}
    env.data_refreshed_at = clock.now()
    env.save(update_fields=["pipeline", "data_refreshed_at"])
    return env


def test_no_uat_database_fails_every_computed_gate_naming_what_to_configure(cast, site_a):
    """C5, E3, R7, R8: UAT without a database is not "nothing to check": each gate fails and says to add
    a backup adapter to UAT's pipeline; a check cannot even be asked for."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1", GUARDED_SQL))
    without_database(site_a, Tier.UAT)
    for name in ("UAT data fresh", "SQL idempotent", "Rollback rehearsed"):
        found = gate(rfc, name)
        assert not found.passed, name
        assert "PLA UAT" in found.reason and "no database configured" in found.reason
        assert CONFIGURE in found.reason
    with pytest.raises(ValidationError, match=CONFIGURE):
        checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert not CheckRun.objects.exists()


def test_a_site_with_dev_and_prod_is_judged_on_devs_copy(cast, db):
    """E1, E3, R7, R8: a two-tier site proves the release in DEV: the checks copy DEV's database and
    every computed gate says it judged DEV's copy."""
    site = make_site("TWO", tiers=(Tier.DEV, Tier.PROD))
    dev = Environment.objects.get(site=site, tier=Tier.DEV)
    assert promotion.proving(site.pk) == dev
    rfc = factories.rfc(cast["dev"], site, release=release_with(cast, "1.0.1", GUARDED_SQL, UNDO))

    fresh = gate(rfc, "UAT data fresh")
    assert not fresh.passed and "no UAT: judged on DEV's copy" in fresh.reason
    assert "never refreshed from PROD" in fresh.reason
    Environment.objects.filter(pk=dev.pk).update(data_refreshed_at=clock.now())
    fresh = gate(rfc, "UAT data fresh")
    assert fresh.passed and fresh.reason.startswith("TWO has no UAT: judged on DEV's copy")

    for kind, name in (
        (CheckKind.IDEMPOTENCY, "SQL idempotent"),
        (CheckKind.REHEARSAL, "Rollback rehearsed"),
    ):
        assert (
            not gate(rfc, name).passed
            and f"the check “{name}” has no run for artifact" in gate(rfc, name).reason
        )
        run = checks.request_check(cast["dev"], rfc, kind, site)
        assert run.environment == dev
        assert checks.run_check(run.pk) == "passed"
        found = gate(rfc, name)
        assert found.passed and "no UAT: judged on DEV's copy" in found.reason, found.reason

    page = client_for(cast["dev"]).get(reverse("releases:detail", args=[rfc.uuid]))
    text = page.content.decode()
    assert page.status_code == 200 and 'data-testid="check-rehearsal"' in text
    assert reverse("environments:detail", args=["TWO", "DEV"]) in text


def test_a_site_with_neither_uat_nor_dev_fails(cast, db):
    """E1, C5: nothing to prove the release in is a failing gate, and a check is refused."""
    site = make_site("ONE", tiers=(Tier.PROD,))
    rfc = factories.rfc(cast["dev"], site, release=release_with(cast, "1.0.1", GUARDED_SQL))
    for name in ("UAT data fresh", "SQL idempotent", "Rollback rehearsed"):
        found = gate(rfc, name)
        assert not found.passed and "ONE has no UAT or DEV environment" in found.reason
    with pytest.raises(ValidationError, match="no UAT or DEV environment"):
        checks.request_check(cast["dev"], rfc, CheckKind.IDEMPOTENCY, site)


def test_without_sql_idempotency_passes_and_the_restore_path_is_rehearsed(cast, site_a):
    """R8, R7, C3: a release without SQL has nothing to run twice (the gate says so), but its rollback —
    restoring the backup and the application snapshot — is rehearsed on scratch copies, with an RTO,
    and the gate fails until that rehearsal ran for this artifact."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1"))
    idempotent = gate(rfc, "SQL idempotent")
    assert idempotent.passed and "nothing to run twice" in idempotent.reason
    rehearsed = gate(rfc, "Rollback rehearsed")
    assert not rehearsed.passed and "has no run for artifact" in rehearsed.reason

    uat = Environment.objects.get(site=site_a, tier=Tier.UAT)
    application = Path(uat.pipeline["snapshot"]["path"])
    files_before = sorted(p.name for p in application.iterdir())
    run = checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert checks.run_check(run.pk) == "passed"
    run.refresh_from_db()
    assert run.result["how"] == "restore of the backup and the application snapshot"
    assert run.result["rto_seconds"] >= 0 and run.result["database_seconds"] >= 0
    assert run.result["application"]["files"] == 1 and run.result["differences"] == []
    assert "rehearsed the restore of the backup and the application snapshot" in run.summary
    assert sorted(p.name for p in application.iterdir()) == files_before  # UAT's own files untouched
    rehearsed = gate(rfc, "Rollback rehearsed")
    assert rehearsed.passed and "PLA UAT passed" in rehearsed.reason

    # A new artifact needs its own rehearsal.
    from workflow import services as wf

    wf.update_rfc(cast["dev"], rfc, release=release_with(cast, "1.0.2"))
    rfc.refresh_from_db()
    assert not gate(rfc, "Rollback rehearsed").passed


def test_a_snapshot_that_cannot_be_restored_fails_the_rehearsal(cast, site_a):
    """R7, C3: the application directory the snapshot adapter names is gone: the rehearsal fails and
    says so, and so does the gate."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1"))
    uat = Environment.objects.get(site=site_a, tier=Tier.UAT)
    shutil.rmtree(uat.pipeline["snapshot"]["path"])
    run = checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert "does not exist" in run.summary
    found = gate(rfc, "Rollback rehearsed")
    assert not found.passed and "does not exist" in found.reason


def test_a_database_that_vanished_fails_the_rehearsal(cast, site_a):
    """R7, C3: a configured database file that is missing is a failed run, not a pass."""
    rfc = factories.rfc(cast["dev"], site_a, release=release_with(cast, "1.0.1"))
    uat = Environment.objects.get(site=site_a, tier=Tier.UAT)
    Path(uat.pipeline["backup"]["database"]).unlink()
    run = checks.request_check(cast["dev"], rfc, CheckKind.REHEARSAL, site_a)
    assert checks.run_check(run.pk) == "failed"
    run.refresh_from_db()
    assert run.summary.startswith("Could not run")
    assert not gate(rfc, "Rollback rehearsed").passed
