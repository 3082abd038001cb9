"""Evidence computed, not claimed (R7, R8, C3, E3, E8): the idempotency check, the rollback
rehearsal, the gates they feed, and the automatic rejection when DEV passed and UAT failed.

Both checks run against a scratch copy of the site's UAT database, never UAT itself, and are bound
to the artifact's checksum: a new artifact needs new runs.
"""

from __future__ import annotations

import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.services import record
from core import clock, jobs
from core.errors import StateConflict
from core.roles import Role
from deployments.models import CheckKind, CheckRun
from environments import access
from environments.models import Environment, RunState, Tier
from plant import evidence
from plant.plantdb import PlantDbError, database_of, has_database
from releases import gates
from releases.models import Rfc

CHECKERS = frozenset({Role.DEVELOPER, Role.KEY_USER, Role.RELEASE_MANAGER, Role.ADMIN})


def uat_of(site) -> Environment:
    try:
        return Environment.objects.select_related("site").get(site=site, tier=Tier.UAT)
    except Environment.DoesNotExist:
        raise ValidationError({"site": f"{site.code} has no UAT environment."}) from None


def request_check(user, rfc: Rfc, kind: str, site) -> CheckRun:
    if kind not in CheckKind.values:
        raise ValidationError({"kind": f"Kind is one of {', '.join(CheckKind.values)}."})
    if site.pk not in {i.site_id for i in rfc.impacts.all()}:
        raise ValidationError({"site": f"{site.code} is not a target of {rfc.number}."})
    if user is not None and not access.has_any_role(user, CHECKERS, site):
        raise PermissionDenied("Developers, key users, release managers and admins run checks.")
    environment = uat_of(site)
    if not has_database(environment):
        raise ValidationError(
            {"site": f"{environment} has no database configured: there is nothing to check."}
        )
    release = rfc.release
    with transaction.atomic():
        if CheckRun.objects.filter(
            rfc=rfc, kind=kind, environment=environment, state__in=[RunState.QUEUED, RunState.RUNNING]
        ).exists():
            raise StateConflict("This check is already queued or running.")
        run = CheckRun.objects.create(
            kind=kind,
            rfc=rfc,
            release=release,
            artifact_sha256=release.artifact_sha256,
            environment=environment,
            requested_by=user,
        )
        record(
            "releases.check.requested",
            run,
            actor=user,
            actor_name=None if user else "system",
            after={"kind": kind, "environment": str(environment), "artifact_sha256": release.artifact_sha256},
        )
        jobs.nudge("deployments.tasks.run_check", run.pk)
    return run


def run_check(run_id: int) -> str:
    run = jobs.claim(CheckRun, run_id)
    if run is None:
        return "not queued"
    run = CheckRun.objects.select_related("release", "environment", "environment__site", "rfc").get(pk=run.pk)
    try:
        passed, summary, result = (_idempotency if run.kind == CheckKind.IDEMPOTENCY else _rehearsal)(run)
    except PlantDbError as exc:
        passed, summary, result = False, f"Could not run: {exc}", {"error": str(exc)}
    run.state = RunState.PASSED if passed else RunState.FAILED
    run.summary, run.result, run.finished_at = summary, result, clock.now()
    run.save(update_fields=["state", "summary", "result", "finished_at"])
    record(
        f"releases.check.{run.state}",
        run,
        actor_name="system",
        after={
            "kind": run.kind,
            "environment": str(run.environment),
            "summary": summary,
            "artifact_sha256": run.artifact_sha256,
            **{k: v for k, v in result.items() if k != "tables"},
        },
    )
    return run.state


def _idempotency(run: CheckRun) -> tuple[bool, str, dict]:
    """R8: the migration twice on a scratch copy of UAT; the second run must change nothing."""
    script = run.release.migration_sql
    if not script.strip():
        return True, "The release has no SQL migration.", {"statements": 0}
    with database_of(run.environment).scratch() as copy:
        before = copy.checksum()
        try:
            copy.run_script(script)
        except PlantDbError as exc:
            return False, f"The first run fails on a copy of UAT: {exc}", {"error": str(exc)}
        first = copy.checksum()
        try:
            copy.run_script(script)
        except PlantDbError as exc:
            return (
                False,
                f"Not idempotent: the second run fails: {exc}",
                {"first": first.as_dict(), "error": str(exc)},
            )
        second = copy.checksum()
    differences = first.differences(second)
    result = {
        "before": before.data,
        "first": first.as_dict(),
        "second": second.as_dict(),
        "differences": differences,
    }
    if differences:
        return False, "Not idempotent: the second run changed " + "; ".join(differences), result
    return True, "Idempotent: schema and data checksums equal after the first and the second run.", result


def _rehearsal(run: CheckRun) -> tuple[bool, str, dict]:
    """R7, C3: apply, then undo (or restore), on a scratch copy of UAT; it must come back exactly."""
    release = run.release
    if not release.migration_sql.strip():
        return True, "The release has no SQL migration: the rollback restores the application snapshot.", {}
    source = database_of(run.environment)
    with source.scratch() as copy:
        before = copy.checksum()
        try:
            copy.run_script(release.migration_sql)
        except PlantDbError as exc:
            return False, f"The migration fails on a copy of UAT: {exc}", {"error": str(exc)}
        began = time.perf_counter()
        try:
            if release.undo_sql.strip():
                copy.run_script(release.undo_sql)
                how = "undo script"
            else:
                source.copy_into(copy)
                how = "restore of the backup"
        except PlantDbError as exc:
            return False, f"The undo script fails: {exc}", {"error": str(exc)}
        rto = round(time.perf_counter() - began, 3)
        after = copy.checksum()
    differences = before.differences(after)
    result = {
        "how": how,
        "rto_seconds": rto,
        "before": before.as_dict(),
        "after": after.as_dict(),
        "differences": differences,
    }
    if differences:
        return False, f"The {how} leaves a difference: " + "; ".join(differences), result
    return True, f"Rolled back by the {how} in {rto:.3f} s; checksums equal to before the apply.", result


def latest(rfc: Rfc, kind: str) -> dict[int, CheckRun]:
    """The newest finished run of `kind` per UAT environment, for this exact artifact."""
    runs = {}
    for run in CheckRun.objects.filter(
        release=rfc.release,
        artifact_sha256=rfc.release.artifact_sha256,
        kind=kind,
        state__in=[RunState.PASSED, RunState.FAILED],
    ).order_by("finished_at"):
        runs[run.environment_id] = run
    return runs


# --- Gates (C5) ---------------------------------------------------------------------------------------
STAGES = frozenset({"schedule", "deploy"})


def _uat_environments(rfc) -> list[Environment]:
    return list(
        Environment.objects.filter(site__in=[i.site_id for i in rfc.impacts.all()], tier=Tier.UAT)
        .select_related("site")
        .order_by("site__code")
    )


@gates.gate("UAT data fresh", applies_from=STAGES)
def uat_fresh(rfc) -> gates.Gate:
    answers = [evidence.freshness(env) for env in _uat_environments(rfc)]
    if not answers:
        return gates.Gate("UAT data fresh", False, "No UAT environment at the RFC's sites.")
    return gates.Gate(
        "UAT data fresh", all(ok for ok, _ in answers), "; ".join(text for _, text in answers) + "."
    )


def _check_gate(rfc, kind: str, name: str) -> gates.Gate:
    if not rfc.release.migration_sql.strip():
        return gates.Gate(name, True, "The release has no SQL migration.")
    runs = latest(rfc, kind)
    parts, ok = [], True
    for env in _uat_environments(rfc):
        if not has_database(env):
            parts.append(f"{env}: no database configured")
            continue
        run = runs.get(env.pk)
        if run is None:
            ok = False
            parts.append(f"{env}: no run for artifact {rfc.release.artifact_sha256[:12]}…")
            continue
        who = run.requested_by.get_username() if run.requested_by else "system"
        ok = ok and run.state == RunState.PASSED
        parts.append(
            f"{env} {run.get_state_display().lower()} {run.finished_at:%Y-%m-%d %H:%M} UTC "
            f"(requested by {who}): {run.summary}"
        )
    return gates.Gate(name, ok, " | ".join(parts) or "No UAT environment.")


@gates.gate("SQL idempotent", applies_from=STAGES)
def sql_idempotent(rfc) -> gates.Gate:
    return _check_gate(rfc, CheckKind.IDEMPOTENCY, "SQL idempotent")


@gates.gate("Rollback rehearsed", applies_from=STAGES)
def rollback_rehearsed(rfc) -> gates.Gate:
    return _check_gate(rfc, CheckKind.REHEARSAL, "Rollback rehearsed")


# --- E8: passed in DEV, failed in UAT ------------------------------------------------------------------
def tier_failure_note(deployment) -> str | None:
    """A deployment that failed in UAT after the same artifact succeeded in DEV: the note that rejects
    the RFC for good, with the drift between the tiers (E8). None when that is not the case; the
    workflow applies the rejection."""
    from deployments.models import DeploymentState

    if deployment.environment.tier != Tier.UAT or deployment.state not in (
        DeploymentState.ROLLED_BACK,
        DeploymentState.FAILED,
        DeploymentState.ROLLBACK_FAILED,
    ):
        return None
    dev = deployment.rfc.deployments.filter(
        environment__site=deployment.environment.site,
        environment__tier=Tier.DEV,
        state=DeploymentState.SUCCEEDED,
    ).first()
    if dev is None:
        return None
    dev_env, uat_env = dev.environment, deployment.environment
    for env in (dev_env, uat_env):
        evidence.record_fingerprint(env)
    differences = evidence.drift(
        Environment.objects.get(pk=dev_env.pk), Environment.objects.get(pk=uat_env.pk)
    )
    note = (
        f"Succeeded in DEV, failed in UAT ({deployment.outcome.strip()}). Drift between DEV and UAT: "
        + ("; ".join(differences) if differences else "none recorded — look at the UAT data")
        + "."
    )
    return note
