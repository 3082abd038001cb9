"""Evidence computed, not claimed (R7, R8, C3, E3, E8): the idempotency check, the rollback
rehearsal, the gates they feed, and the automatic rejection when DEV passed and UAT failed.

Both checks run against a scratch copy of the database of the tier that proves the release — the
site's UAT, or its DEV where the site has no UAT (`promotion.proving`) — never that database itself,
and are bound to the artifact's checksum: a new artifact needs new runs.

The gates fail closed (DESIGN principle 10): a tier without a database, a site without a tier to
prove the release in, or a check that has not run for this artifact is a failing gate whose reason
says what to configure or run. One exemption, by definition: a release without SQL is idempotent
(there is nothing to run twice). Its rollback is still rehearsed for real: the database backup is
restored into a scratch copy and compared, and a directory snapshot of the application is taken and
restored on a copy of the application directory, with the recovery time recorded (C3).

Two more kinds compare a scratch copy before the release's migration with one after it. The replay
reconciliation replays the recorded interface messages the pipeline's `replay` names — a table PROD
records, brought to UAT by the masked refresh, so the set is masked like the rest of the data — and
compares each message's output; the parallel run compares the pipeline's `parallel` queries (reports,
planning). Their gates apply only where the proving tier's pipeline declares the step: there the run
must have passed for this artifact; elsewhere the gate passes and says it is not configured.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from audit.services import record
from core import clock, jobs
from core.errors import StateConflict
from core.roles import Role
from deployments import promotion
from deployments.models import CheckKind, CheckRun
from environments import access
from environments.models import Environment, RunState, Tier
from environments.pipelines import ADD_EVIDENCE, evidence_problems
from plant import evidence
from plant.adapters import Context, DirectorySnapshotAdapter
from plant.plantdb import PlantDbError, database_of, has_database
from releases import gates
from releases.models import Rfc
from releases.services import site_environments

CHECKERS = frozenset({Role.DEVELOPER, Role.KEY_USER, Role.RELEASE_MANAGER, Role.ADMIN})
CONFIGURE_DATABASE = gettext_lazy(
    "add a sqlite or postgres backup adapter (the plant's database) to its pipeline"
)


def proving_of(site) -> Environment:
    """The environment whose database the checks copy: the site's UAT, or its DEV where it has none."""
    environment = promotion.proving(site.pk)
    if environment is None:
        raise ValidationError(
            {
                "site": _("%(site)s has no UAT or DEV environment to prove the release in.")
                % {"site": site.code}
            }
        )
    return environment


uat_of = proving_of  # the name callers used before two-tier sites were judged on DEV


def no_database(environment: Environment) -> str:
    return _("%(environment)s has no database configured: %(configure)s") % {
        "environment": environment,
        "configure": CONFIGURE_DATABASE,
    }


def request_check(user, rfc: Rfc, kind: str, site) -> CheckRun:
    if kind not in CheckKind.values:
        raise ValidationError(
            {"kind": _("Kind is one of %(kinds)s.") % {"kinds": ", ".join(CheckKind.values)}}
        )
    if site.pk not in {i.site_id for i in rfc.impacts.all()}:
        raise ValidationError(
            {"site": _("%(site)s is not a target of %(rfc)s.") % {"site": site.code, "rfc": rfc.number}}
        )
    if user is not None and not access.has_any_role(user, CHECKERS, site):
        raise PermissionDenied(_("Developers, key users, release managers and admins run checks."))
    environment = proving_of(site)
    if not has_database(environment):
        raise ValidationError({"site": no_database(environment)})
    if kind in DECLARED and not declares(environment, kind):
        raise ValidationError({"kind": not_declared(environment, kind)})
    release = rfc.release
    with transaction.atomic():
        if CheckRun.objects.filter(
            rfc=rfc, kind=kind, environment=environment, state__in=[RunState.QUEUED, RunState.RUNNING]
        ).exists():
            raise StateConflict(_("This check is already queued or running."))
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
        passed, summary, result = RUNNERS[run.kind](run)
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
            **{k: v for k, v in result.items() if k not in DETAIL},
        },
    )
    return run.state


def _idempotency(run: CheckRun) -> tuple[bool, str, dict]:
    """R8: the migration twice on a scratch copy of the proving tier; the second run must change nothing."""
    script = run.release.migration_sql
    if not script.strip():
        return True, "The release has no SQL migration: there is nothing to run twice.", {"statements": 0}
    with database_of(run.environment).scratch() as copy:
        before = copy.checksum()
        try:
            copy.run_script(script)
        except PlantDbError as exc:
            return (
                False,
                f"The first run fails on a copy of {run.environment.tier}: {exc}",
                {"error": str(exc)},
            )
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
    """R7, C3: apply, then undo (or restore), on a scratch copy of the proving tier; it must come back
    exactly. Without SQL the rollback is the restore of the backup and the snapshot: rehearse that."""
    release = run.release
    if not release.migration_sql.strip():
        return _restore_rehearsal(run)
    source = database_of(run.environment)
    with source.scratch() as copy:
        before = copy.checksum()
        try:
            copy.run_script(release.migration_sql)
        except PlantDbError as exc:
            return (
                False,
                f"The migration fails on a copy of {run.environment.tier}: {exc}",
                {"error": str(exc)},
            )
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


def _restore_rehearsal(run: CheckRun) -> tuple[bool, str, dict]:
    """C3, R7 for a release without SQL: restore the database backup (a scratch copy taken as the
    deployment's backup step would) into a second scratch copy — SQLite's backup API, or pg_restore
    --clean — and compare checksums. With a directory snapshot in the pipeline, snapshot a copy of the
    application directory, change it, restore it with the deployment's own adapter and compare file
    hashes. The RTO is the time the restores took. A VM snapshot is restored by its hypervisor's tool
    and is not rehearsed here (the result says so)."""
    source = database_of(run.environment)
    with source.scratch() as backup, source.scratch() as target:
        before = backup.checksum()
        began = time.perf_counter()
        backup.copy_into(target)
        database_seconds = time.perf_counter() - began
        after = target.checksum()
    differences = before.differences(after)
    result = {
        "how": "restore of the backup",
        "before": before.as_dict(),
        "after": after.as_dict(),
        "differences": differences,
        "database_seconds": round(database_seconds, 3),
    }
    rto = database_seconds
    snapshot = (run.environment.pipeline or {}).get("snapshot") or {}
    if snapshot.get("adapter") == "directory":
        application = _rehearse_directory(run, Path(snapshot.get("path", "")))
        result["application"] = application
        rto += application.get("seconds", 0)
        result["how"] = "restore of the backup and the application snapshot"
        differences = differences + application["differences"]
    elif snapshot:
        result["not_rehearsed"] = f"the {snapshot.get('adapter', '?')} snapshot is restored by its own tool"
    result["rto_seconds"] = round(rto, 3)
    result["differences"] = differences
    if differences:
        return False, f"The {result['how']} leaves a difference: " + "; ".join(differences), result
    return (
        True,
        f"No SQL in the release: rehearsed the {result['how']} on scratch copies of "
        f"{run.environment.tier} in {rto:.3f} s; checksums equal to before.",
        result,
    )


# --- Replay reconciliation and parallel run -----------------------------------------------------------
DECLARED = {CheckKind.REPLAY: "replay", CheckKind.PARALLEL: "parallel"}  # kind → its pipeline key
# The run keeps these lists; its audit event keeps the counts.
DETAIL = frozenset({"tables", "matched", "differing", "missing", "duplicated", "queries"})
LISTED = 50  # rows or keys kept per category; the counts are always whole


def declares(environment: Environment, kind: str) -> bool:
    return (environment.pipeline or {}).get(DECLARED[kind]) is not None


def not_declared(environment: Environment, kind: str) -> str:
    return _("%(environment)s's pipeline declares no %(key)s: add %(add)s") % {
        "environment": environment,
        "key": DECLARED[kind],
        "add": ADD_EVIDENCE[DECLARED[kind]],
    }


def _spec_refused(run: CheckRun) -> tuple[bool, str, dict] | None:
    """Fail closed when the step is not declared or badly declared, saying what to write."""
    if not declares(run.environment, run.kind):
        text = not_declared(run.environment, run.kind)
        return False, text, {"error": text}
    key = DECLARED[run.kind]
    problems = [p for p in evidence_problems({key: run.environment.pipeline[key]}) if p]
    if problems:
        return False, " ".join(problems), {"error": " ".join(problems)}
    return None


def _before_and_after(run: CheckRun, measure) -> tuple[object, object]:
    """`measure(copy)` on a scratch copy as it is and on one after the release's migration; a failing
    migration is a PlantDbError, so the run fails and says so."""
    source = database_of(run.environment)
    with source.scratch() as before_copy, source.scratch() as after_copy:
        before = measure(before_copy)
        if run.release.migration_sql.strip():
            try:
                after_copy.run_script(run.release.migration_sql)
            except PlantDbError as exc:
                raise PlantDbError(
                    f"the migration fails on a copy of {run.environment.tier}: {exc}"
                ) from None
        return before, measure(after_copy)


def reconcile(before: list[dict], after: list[dict]) -> dict:
    """Per message key: matched, differing (another output after), missing (an output before, none
    after) or duplicated (the key recorded twice, or the output produced again after the change)."""
    outputs = {}
    for side, replayed in (("before", before), ("after", after)):
        for message in replayed:
            entry = outputs.setdefault(message["key"], {"interface": message["interface"], "seen": 0})
            entry[side] = entry.get(side, []) + message["output"]
            entry["seen"] += side == "before"
    result = {name: [] for name in ("matched", "differing", "missing", "duplicated")}
    for key, entry in outputs.items():
        old, new = entry.get("before", []), entry.get("after", [])
        was = Counter(json.dumps(row) for row in old)
        now = Counter(json.dumps(row) for row in new)
        if entry["seen"] > 1 or (was and now > was):
            category = "duplicated"
        elif was == now:
            category = "matched"
        elif old and not new:
            category = "missing"
        else:
            category = "differing"
        if category == "matched":
            result["matched"].append(key)
        else:
            result[category].append(
                {"key": key, "interface": entry["interface"], "before": old[:LISTED], "after": new[:LISTED]}
            )
    result["counts"] = {name: len(result[name]) for name in ("matched", "differing", "missing", "duplicated")}
    for name in ("matched", "differing", "missing", "duplicated"):
        result[name] = result[name][:LISTED]
    return result


def _replay(run: CheckRun) -> tuple[bool, str, dict]:
    """The recorded messages replayed on a scratch copy before and one after the migration; every
    message must give the same output."""
    refused = _spec_refused(run)
    if refused:
        return refused
    spec = run.environment.pipeline["replay"]
    statements = spec["query"] if isinstance(spec["query"], list) else [spec["query"]]
    before, after = _before_and_after(
        run, lambda copy: copy.replay(spec["messages"], statements, spec["output"])
    )
    result = {
        "messages": len(before),
        "message_set_sha256": hashlib.sha256(
            json.dumps([(m["key"], m["interface"]) for m in before]).encode()
        ).hexdigest(),
        **reconcile(before, after),
    }
    counts = result["counts"]
    summary = (
        f"{len(before)} recorded message(s) replayed before and after the migration on copies of "
        f"{run.environment.tier}: {counts['matched']} matched, {counts['differing']} differing, "
        f"{counts['missing']} missing, {counts['duplicated']} duplicated."
    )
    if not before:
        return (
            False,
            f"No recorded message to replay: the messages query found none on {run.environment}.",
            result,
        )
    return not (counts["differing"] or counts["missing"] or counts["duplicated"]), summary, result


def compare_rows(before: list[list], after: list[list]) -> dict:
    """Rows named by their first column: only before, only after, changed (same name, other values)."""

    def grouped(rows):
        groups = {}
        for row in rows:
            groups.setdefault(json.dumps(row[:1]), []).append(row)
        return {name: sorted(group, key=json.dumps) for name, group in groups.items()}

    old, new = grouped(before), grouped(after)
    only_before = [row for name in old if name not in new for row in old[name]]
    only_after = [row for name in new if name not in old for row in new[name]]
    changed = [
        {"before": old[name], "after": new[name]} for name in old if name in new and old[name] != new[name]
    ]
    return {
        "rows_before": len(before),
        "rows_after": len(after),
        "differences": len(only_before) + len(only_after) + len(changed),
        "only_before": only_before[:LISTED],
        "only_after": only_after[:LISTED],
        "changed": changed[:LISTED],
    }


def _parallel(run: CheckRun) -> tuple[bool, str, dict]:
    """The pipeline's named reports and planning queries on a scratch copy before and one after the
    migration; their results must be equal."""
    refused = _spec_refused(run)
    if refused:
        return refused
    queries = run.environment.pipeline["parallel"]

    def measure(copy):
        answers = []
        for query in queries:
            try:
                answers.append(copy.rows(query["query"]))
            except PlantDbError as exc:
                answers.append([[f"error: {exc}"]])
        return answers

    before, after = _before_and_after(run, measure)
    compared = [
        {"name": q["name"], "query": q["query"], **compare_rows(old, new)}
        for q, old, new in zip(queries, before, after, strict=True)
    ]
    unequal = [c["name"] for c in compared if c["differences"]]
    result = {"queries": compared, "unequal": unequal}
    if unequal:
        return (
            False,
            "Results differ after the migration: "
            + "; ".join(
                f"{c['name']} ({c['differences']} difference(s))" for c in compared if c["differences"]
            ),
            result,
        )
    return (
        True,
        f"{len(compared)} query result(s) equal before and after the migration on copies of {run.environment.tier}.",
        result,
    )


RUNNERS = {
    CheckKind.IDEMPOTENCY: _idempotency,
    CheckKind.REHEARSAL: _rehearsal,
    CheckKind.REPLAY: _replay,
    CheckKind.PARALLEL: _parallel,
}


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(item.relative_to(folder)): hashlib.sha256(item.read_bytes()).hexdigest()
        for item in sorted(folder.rglob("*"))
        if item.is_file()
    }


def _rehearse_directory(run: CheckRun, application: Path) -> dict:
    """The directory snapshot adapter's snapshot and restore, on a copy of the application directory."""
    if not application.is_dir():
        return {"differences": [f"application directory {application} does not exist"]}
    with tempfile.TemporaryDirectory(prefix="pcc-rehearsal-") as folder:
        live, work = Path(folder) / "app", Path(folder) / "work"
        shutil.copytree(application, live)
        work.mkdir()
        before = _file_hashes(live)
        ctx = Context(
            deployment_id=0,
            rfc_number=run.rfc.number,
            site=run.environment.site.code,
            tier=run.environment.tier,
            version=run.release.version,
            artifact_path="",
            artifact_sha256=run.artifact_sha256,
            migration_sql="",
            undo_sql="",
            equipment_writes=False,
            work_dir=work,
        )
        taken = DirectorySnapshotAdapter(str(live)).run(ctx)
        if not taken.ok:
            return {"differences": [f"snapshot failed: {taken.output}"]}
        (live / "pcc-rehearsal-marker.txt").write_text("left by a failed deployment", encoding="utf-8")
        began = time.perf_counter()
        restored = DirectorySnapshotAdapter(str(live), restore=True).run(ctx)
        seconds = time.perf_counter() - began
        if not restored.ok:
            return {"differences": [f"restore failed: {restored.output}"], "seconds": round(seconds, 3)}
        after = _file_hashes(live)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    return {
        "files": len(before),
        "seconds": round(seconds, 3),
        "differences": [f"application file {name} differs after the restore" for name in changed],
    }


def latest(rfc: Rfc, kind: str) -> dict[int, CheckRun]:
    """The newest finished run of `kind` per environment, for this exact artifact. Every kind is read
    in one query, kept on the RFC object like `proving_environments` (the gates evaluate a freshly
    read one; the RFC page asks for four kinds, from the gates and for its evidence table)."""
    cached = getattr(rfc, "_latest_runs", None)
    if cached is None:
        cached = {}
        for run in CheckRun.objects.filter(
            release=rfc.release,
            artifact_sha256=rfc.release.artifact_sha256,
            state__in=[RunState.PASSED, RunState.FAILED],
        ).order_by("finished_at"):
            cached.setdefault(run.kind, {})[run.environment_id] = run
        rfc._latest_runs = cached
    return dict(cached.get(kind, {}))


# --- Gates (C5) ---------------------------------------------------------------------------------------
STAGES = frozenset({"schedule", "deploy"})


def proving_environments(rfc) -> list[tuple[object, Environment | None]]:
    """(site, the environment that proves the release there, or None) for every target site: worked
    out once per RFC object from its sites' environments (`site_environments`: the gates evaluate a
    freshly read RFC, and ask this once per gate)."""
    cached = getattr(rfc, "_proving_environments", None)
    if cached is not None:
        return cached
    impacts = list(rfc.impacts.all())
    by_site: dict[int, list[Environment]] = {}
    for env in site_environments(rfc):
        by_site.setdefault(env.site_id, []).append(env)
    found = [(impact.site, promotion.proving_among(by_site.get(impact.site_id, []))) for impact in impacts]
    rfc._proving_environments = found
    return found


def _where(site, environment: Environment) -> str:
    if environment.tier == Tier.UAT:
        return str(environment)
    return _("%(site)s has no UAT: judged on DEV's copy — %(environment)s") % {
        "site": site.code,
        "environment": environment,
    }


# The gates' names are keys (waivers name them): marked here, translated where they are shown.
UAT_FRESH = gettext_noop("UAT data fresh")
SQL_IDEMPOTENT = gettext_noop("SQL idempotent")
ROLLBACK_REHEARSED = gettext_noop("Rollback rehearsed")
MESSAGES_RECONCILED = gettext_noop("Messages reconciled")
PARALLEL_EQUAL = gettext_noop("Parallel run equal")


@gates.gate(UAT_FRESH, applies_from=STAGES, waivable=True)
def uat_fresh(rfc) -> gates.Gate:
    """E3: the proving tier's data was refreshed from PROD within the limit; judged on DEV's copy where
    the site has no UAT. No database, or no tier at all, fails and says what to configure."""
    parts, ok = [], True
    for site, env in proving_environments(rfc):
        if env is None:
            ok = False
            parts.append(
                _("%(site)s has no UAT or DEV environment whose data could be judged") % {"site": site.code}
            )
            continue
        fine, text = evidence.freshness(env)
        ok = ok and fine
        parts.append(
            text
            if env.tier == Tier.UAT
            else _("%(site)s has no UAT: judged on DEV's copy — %(environment)s")
            % {"site": site.code, "environment": text}
        )
    if not parts:
        return gates.Gate(UAT_FRESH, False, _("No target site is named."))
    return gates.Gate(UAT_FRESH, ok, "; ".join(parts) + ".")


def _check_gate(rfc, kind: str, name: str) -> gates.Gate:
    if kind == CheckKind.IDEMPOTENCY and not rfc.release.migration_sql.strip():
        return gates.Gate(name, True, _("The release has no SQL migration: there is nothing to run twice."))
    proving = proving_environments(rfc)
    declared = kind not in DECLARED or any(env is not None and declares(env, kind) for _site, env in proving)
    runs = latest(rfc, kind) if declared else {}  # no query where no tier declares the step
    parts, ok = [], True
    for site, env in proving:
        if env is None:
            ok = False
            parts.append(
                _("%(site)s has no UAT or DEV environment to run the check in") % {"site": site.code}
            )
            continue
        where = _where(site, env)
        if kind in DECLARED and not declares(env, kind):
            parts.append(
                _("not configured for %(environment)s (its pipeline declares no %(key)s)")
                % {"environment": env, "key": DECLARED[kind]}
            )
            continue
        if not has_database(env):
            ok = False
            parts.append(
                _("%(where)s: no database configured — %(configure)s")
                % {"where": where, "configure": CONFIGURE_DATABASE}
            )
            continue
        run = runs.get(env.pk)
        if run is None:
            ok = False
            parts.append(
                _("%(where)s: the check “%(check)s” has no run for artifact %(artifact)s…")
                % {
                    "where": where,
                    "check": CheckKind(kind).label,
                    "artifact": rfc.release.artifact_sha256[:12],
                }
            )
            continue
        who = run.requested_by.get_username() if run.requested_by else _("system")
        ok = ok and run.state == RunState.PASSED
        parts.append(
            _("%(where)s %(state)s %(finished)s UTC (requested by %(who)s): %(summary)s")
            % {
                "where": where,
                "state": run.get_state_display().lower(),
                "finished": f"{run.finished_at:%Y-%m-%d %H:%M}",
                "who": who,
                "summary": run.summary,
            }
        )
    if not parts:
        return gates.Gate(name, False, _("No target site is named."))
    return gates.Gate(name, ok, " | ".join(parts))


@gates.gate(SQL_IDEMPOTENT, applies_from=STAGES, waivable=True)
def sql_idempotent(rfc) -> gates.Gate:
    return _check_gate(rfc, CheckKind.IDEMPOTENCY, SQL_IDEMPOTENT)


@gates.gate(ROLLBACK_REHEARSED, applies_from=STAGES, waivable=True)
def rollback_rehearsed(rfc) -> gates.Gate:
    return _check_gate(rfc, CheckKind.REHEARSAL, ROLLBACK_REHEARSED)


@gates.gate(MESSAGES_RECONCILED, applies_from=STAGES, waivable=True)
def messages_reconciled(rfc) -> gates.Gate:
    return _check_gate(rfc, CheckKind.REPLAY, MESSAGES_RECONCILED)


@gates.gate(PARALLEL_EQUAL, applies_from=STAGES, waivable=True)
def parallel_equal(rfc) -> gates.Gate:
    return _check_gate(rfc, CheckKind.PARALLEL, PARALLEL_EQUAL)


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
