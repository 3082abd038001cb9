"""The deployment engine (X1–X7): dispatch due rows, lease them, run the journaled pipeline.

The database is the truth (DESIGN principle 1). Beat runs `dispatch()` every few seconds; it
claims due deployments with `select_for_update(skip_locked=True)` and enqueues `run()` for each.
`run()` takes a lease on the row, so a duplicate delivery, a second dispatcher or a late
redelivery finds the lease and does nothing. Every step writes its journal row before it acts
and after it ends; a worker that dies leaves a "running" row: a side-effect-free step is simply
run again, an apply step is never repeated — the deployment rolls back instead (principle 2).
The smoke delay is a due time on the row, not a sleeping task or a long ETA (CELERY.md 1, 2).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import threading
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from audit.actions import canonical
from audit.services import record
from core import clock, jobs
from core.links import absolute_url
from core.roles import Role
from deployments import promotion
from deployments.models import Deployment, DeploymentState, DeploymentStep, StepState
from deployments.states import IN_PROGRESS, TERMINAL, move
from environments import calendar
from environments import config as release_config
from environments.models import Environment, Tier
from environments.windows import rules_for
from outbox import services as outbox
from plant import adapters, signals, uploads
from plant import config as plant_config
from plant.plantdb import SqliteDatabase, database_of
from releases import gates

logger = logging.getLogger(__name__)
RUN_TASK = "deployments.tasks.run_deployment"  # by name: the task module imports this one
S = DeploymentState
FORWARD = [
    "verify_checksum",
    "baseline",
    "vm_snapshot",
    "snapshot",
    "backup",
    "signal_baseline",
    "apply",
    "config",
    "equipment",
    "wait",
    "smoke",
    "compare",
    "signals",
    "commit",
]
# Rollback (R3, X4): the equipment's previous recipe back, the application files back, then the
# release's undo script in one transaction, verified by the smoke test: production data written since
# the apply stays. Only when that fails (or there is no undo script) the VM and the backup are restored,
# and the production data written since the backup is lost: the RPO says how much.
ROLLBACK = [
    "revert_equipment",
    "restore_snapshot",
    "restore_config",
    "undo",
    "verify_undo",
    "restore_vm",
    "restore_backup",
    "verify_rollback",
]
# A step that may have half-run is never repeated (FAULTS 22: each step's effect at most once). A forward
# one: the deployment rolls back instead. A rollback one goes on without it: a half-run undo script
# counts as a failed one (the backup is restored), a half-run equipment revert leaves the rollback
# failed for a person to check the line's recipe.
UNSAFE_TO_REPEAT = {"apply", "equipment", "undo", "revert_equipment"}
PERFORMANCE_TOLERANCE = 0.20  # X3: more than 20 % slower than the baseline fails…
# …and by more than measurement noise (settings.SMOKE_NOISE_MS, 15 ms by default): a 20 ms call that
# takes 30 ms is not a regression.
DISPATCH_BATCH = 20


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def lease_seconds() -> int:
    return settings.DEPLOYMENT_LEASE_SECONDS


# --- Dispatch --------------------------------------------------------------------------------------
def due_queryset(now):
    unleased = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    not_recently_sent = Q(dispatched_at__isnull=True) | Q(
        dispatched_at__lt=now - timedelta(seconds=settings.DEPLOYMENT_REDISPATCH_SECONDS)
    )
    return (
        Deployment.objects.filter(
            Q(state=S.SCHEDULED, scheduled_start__lte=now) | Q(state__in=IN_PROGRESS, next_action_at__lte=now)
        )
        .filter(unleased)
        .filter(not_recently_sent)
    )


def dispatch() -> list[int]:
    """Claim due deployments and hand each to a worker. Two beats at once claim disjoint rows;
    a task lost with a flushed Redis is sent again after DEPLOYMENT_REDISPATCH_SECONDS."""
    now = clock.now()
    with transaction.atomic():
        rows = list(
            due_queryset(now)
            .select_for_update(skip_locked=True)
            .order_by("scheduled_start")
            .values_list("pk", flat=True)[:DISPATCH_BATCH]
        )
        if rows:
            Deployment.objects.filter(pk__in=rows).update(dispatched_at=now)
            for pk in rows:
                jobs.nudge(RUN_TASK, pk)
    return rows


# --- The lease -------------------------------------------------------------------------------------
def acquire(deployment_id: int, owner: str) -> bool:
    now = clock.now()
    taken = (
        Deployment.objects.filter(pk=deployment_id)
        .exclude(state__in=TERMINAL)  # a late duplicate delivery for a finished deployment is no attempt
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_owner=owner))
        .update(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            attempts=F("attempts") + 1,
        )
    )
    return bool(taken)


def renew(deployment_id: int, owner: str) -> bool:
    return bool(
        Deployment.objects.filter(pk=deployment_id, lease_owner=owner).update(
            lease_expires_at=clock.now() + timedelta(seconds=lease_seconds())
        )
    )


def release(deployment_id: int, owner: str) -> None:
    """Let go of the row; its next due time (the smoke test) is dispatched as soon as it comes."""
    Deployment.objects.filter(pk=deployment_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None, dispatched_at=None
    )


class _Heartbeat:
    """Keeps the lease alive while a long step runs (its own database connection)."""

    def __init__(self, deployment_id: int, owner: str):
        self.deployment_id, self.owner, self.stop = deployment_id, owner, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        try:
            while not self.stop.wait(max(1.0, lease_seconds() / 3)):
                renew(self.deployment_id, self.owner)
        finally:
            close_old_connections()
            from django.db import connection

            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


class LeaseLost(Exception):
    pass


class WorkerStopping(Exception):
    """The worker is in a cold shutdown: the running step is left to the next worker (the journal row
    stays running), never recorded as failed."""


def cold_shutdown() -> bool:
    """True while this process is a Celery worker in a cold shutdown (SIGQUIT, or SIGTERM remapped):
    Celery then raises inside the running task."""
    from celery.worker import state

    return state.should_terminate is not None and state.should_terminate is not False


# --- Running a deployment -------------------------------------------------------------------------
def run(deployment_id: int, owner: str | None = None) -> str:
    """Advance one deployment as far as it can go now. Safe to call any number of times."""
    owner = owner or worker_id()
    if not acquire(deployment_id, owner):
        state = Deployment.objects.filter(pk=deployment_id).values_list("state", flat=True).first()
        return state if state in TERMINAL else "leased by another worker"
    try:
        # The journal, the outcome and the audit trail are records: written in English whoever's
        # request or worker runs the deployment.
        with translation.override(None):
            return _Runner(deployment_id, owner).advance()
    except LeaseLost:
        return "lease lost"
    except WorkerStopping as exc:
        logger.warning(
            "deployment %s: worker stopping in step %s; left to the next worker", deployment_id, exc
        )
        return "worker stopping"
    finally:
        release(deployment_id, owner)


@functools.cache
def _MUTABLE_FIELDS() -> tuple[str, ...]:  # noqa: N802 (a constant, computed once the models are ready)
    return tuple(
        field.attname
        for field in Deployment._meta.concrete_fields
        if field.name not in ("id", "rfc", "environment")
    )


class _Runner:
    def __init__(self, deployment_id: int, owner: str):
        self.owner = owner
        self.deployment = Deployment.objects.select_related(
            "rfc", "rfc__release", "environment", "environment__site"
        ).get(pk=deployment_id)
        self.env = self.deployment.environment
        self.pipeline = self.env.pipeline or {}

    # --- helpers ---
    def refresh(self) -> Deployment:
        """The row's own columns again (its lease, state, rollback request); the RFC, its release and
        the environment stay as loaded: a deployment never changes them, and refetching them per
        step was most of a run's queries."""
        self.deployment.refresh_from_db(fields=_MUTABLE_FIELDS())
        if self.deployment.lease_owner != self.owner:
            raise LeaseLost
        return self.deployment

    def set_state(self, state: str, **fields) -> None:
        """Through the Deployment state machine: an illegal move raises instead of being written."""
        d = self.deployment
        before = d.state

        def audit() -> None:
            record(
                canonical(f"releases.deployment.{state}"),  # past tense (audit/actions.py)
                d,
                actor_name="system",
                before={"state": before},
                after={
                    "state": state,
                    "environment": str(self.env),
                    **({"outcome": d.outcome} if d.outcome else {}),
                },
            )

        move(d, state, audit=audit, **fields)

    def context(self) -> adapters.Context:
        release = self.deployment.rfc.release
        artifact = ""
        if release.artifact_file:
            artifact = str(uploads.path_of("artifacts", release.artifact_file))
        elif release.artifact_url.startswith("file://"):
            artifact = release.artifact_url.removeprefix("file://")
        return adapters.Context(
            deployment_id=self.deployment.pk,
            rfc_number=self.deployment.rfc.number,
            site=self.env.site.code,
            tier=self.env.tier,
            version=release.version,
            artifact_path=artifact,
            artifact_sha256=release.artifact_sha256,
            migration_sql=release.migration_sql,
            undo_sql=release.undo_sql,
            equipment_writes=self.env.equipment_writes,
            work_dir=adapters.work_dir(self.deployment.uuid),
        )

    # --- the journal ---
    def step(self, phase: str, name: str, action) -> adapters.StepResult:
        """Run `action` once under its journal row; a finished row is answered from the journal."""
        order = (FORWARD if phase == "forward" else ROLLBACK).index(name) + (0 if phase == "forward" else 100)
        row = DeploymentStep.objects.filter(deployment=self.deployment, phase=phase, name=name).first()
        if row is not None and row.state in (StepState.SUCCEEDED, StepState.SIMULATED, StepState.SKIPPED):
            return adapters.StepResult(True, row.output, row.result, row.state == StepState.SIMULATED)
        if row is not None and row.state == StepState.FAILED:
            return adapters.StepResult(False, row.output, row.result)
        if (
            row is not None
            and row.state in (StepState.RUNNING, StepState.INTERRUPTED)
            and name in UNSAFE_TO_REPEAT
        ):
            if row.state == StepState.RUNNING:  # said once, however often the rollback resumes
                row.state, row.finished_at = StepState.INTERRUPTED, clock.now()
                row.output += "\nThe worker running this step stopped; it is not repeated: " + (
                    "rolling back." if phase == "forward" else "the rollback goes on without it."
                )
                row.save(update_fields=["state", "finished_at", "output"])
            return adapters.StepResult(False, row.output, {"interrupted": True})
        self.refresh()
        now = clock.now()
        if row is None:
            row = DeploymentStep.objects.create(
                deployment=self.deployment,
                order=order,
                phase=phase,
                name=name,
                started_at=now,
                worker=self.owner,
            )
        else:  # a side-effect-free step a dead worker left running: run it again
            row.started_at, row.worker, row.state = now, self.owner, StepState.RUNNING
            row.save(update_fields=["started_at", "worker", "state"])
        with _Heartbeat(self.deployment.pk, self.owner):
            try:
                result = action()
            except adapters.AdapterError as exc:
                result = adapters.StepResult(False, f"configuration error: {exc}")
            except Exception as exc:  # an adapter bug must still end in a journal row and a rollback
                if cold_shutdown():
                    raise WorkerStopping(name) from exc
                logger.exception("step %s of deployment %s crashed", name, self.deployment.pk)
                result = adapters.StepResult(False, f"{type(exc).__name__}: {exc}")
            if result is not None and not result.ok and cold_shutdown():
                # The worker is being stopped (SIGQUIT, FAULTS case 23): Celery raises inside the running
                # task, and an adapter may have reported that as its own failure. Neither is the step
                # failing: the row stays running, as if the worker had been killed, and the next worker
                # runs it again or, for a step unsafe to repeat, marks it interrupted and rolls back.
                raise WorkerStopping(name)
        if result is None:  # not configured for this environment
            row.state, row.output = StepState.SKIPPED, "not configured for this environment"
            row.result = {}
            result = adapters.StepResult(True, row.output)
        else:
            row.state = (
                (StepState.SIMULATED if result.simulated else StepState.SUCCEEDED)
                if result.ok
                else StepState.FAILED
            )
            row.output, row.result = result.output, result.data
            if result.simulated:
                row.output = "SIMULATED (this environment does not write to equipment, E5)\n" + row.output
        row.adapter = row.adapter or result.data.get("adapter", "")
        row.finished_at = clock.now()
        row.save(update_fields=["state", "output", "result", "finished_at", "adapter"])
        if phase == "rollback":
            self.overdue_check()
        return result

    def adapter_step(
        self, phase: str, name: str, key: str, *, restore: bool = False, every: bool = False, only=None
    ):
        """Run the pipeline's `key` adapters as one journal step. Each adapter's own result is kept in
        the step's data ("checks"). `every`: run them all even after one failed (the smoke checks, X7:
        all must pass and each has its result); otherwise stop at the first failure (never go on
        applying after a failed apply). `only`: a filter on the adapter specs."""
        spec = self.pipeline.get(key)
        specs = [] if not spec else (spec if isinstance(spec, list) else [spec])
        if only is not None:
            specs = [item for item in specs if only(item)]

        def action():
            if not specs:
                return None
            outputs, checks, merged, simulated, ok = [], [], {}, False, True
            for item in specs:
                result = adapters.build(item, restore=restore).run(self.context())
                merged.update({k: v for k, v in result.data.items() if k != "adapter"})
                label = item.get("name") or item.get("adapter", "?")
                outputs.append(f"[{label}] {result.output}" if len(specs) > 1 else result.output)
                checks.append(
                    {
                        "name": label,
                        "adapter": item.get("adapter", "?"),
                        "ok": result.ok,
                        "simulated": result.simulated,
                        **{
                            k: v for k, v in result.data.items() if k in ("latency_ms", "status", "exit_code")
                        },
                    }
                )
                simulated = simulated or result.simulated
                ok = ok and result.ok
                if not result.ok and not every:
                    break
            data = {**merged, "adapter": ", ".join(c["adapter"] for c in checks), "checks": checks}
            timed = [c["latency_ms"] for c in checks if c.get("latency_ms") is not None]
            if timed:
                data["latency_ms"] = round(sum(timed), 1)
            return adapters.StepResult(ok, "\n".join(outputs), data, simulated)

        return self.step(phase, name, action)

    # --- the pipeline ---
    def advance(self) -> str:
        d = self.refresh()
        if d.state in TERMINAL:
            return d.state
        if d.state == S.SCHEDULED:
            refused = self.preflight()
            if refused:
                return refused
        if d.state == S.ROLLING_BACK or d.rollback_requested_by_id:
            return self.rollback(
                d.outcome
                or "Rollback requested by "
                f"{d.rollback_requested_by.get_username() if d.rollback_requested_by else 'a user'}."
            )
        for name in FORWARD:
            if self.refresh().rollback_requested_by_id:
                return self.rollback("Rollback requested by a release manager.")
            outcome = getattr(self, f"do_{name}")()
            if outcome == "wait":
                return "waiting for the smoke test" if name == "wait" else "waiting for the terminals"
            if outcome is not True:
                return self.rollback(outcome)
        return self.finish(S.SUCCEEDED, "Deployed and verified.")

    def preflight(self) -> str | None:
        """Before touching the environment: the gates and the window again (W5)."""
        d, rfc = self.deployment, self.deployment.rfc
        now = clock.now()
        window_end = self.window_end()
        need = timedelta(minutes=d.duration_minutes)
        if window_end is not None and now + need > window_end:
            self.set_state(
                S.MISSED,
                finished_at=now,
                outcome=f"Its window closed at {window_end.isoformat()} "
                "before it could start; nothing was touched.",
            )
            return S.MISSED
        refused = self.promotion_refusal()
        if refused:
            self.set_state(
                S.FAILED, finished_at=now, outcome=f"Refused before touching {self.env}: {refused}"
            )
            return S.FAILED
        if self.env.tier == Tier.PROD:
            signals.take_reading(self.env, "deployment")  # the readiness signals as they are now
            failed = gates.failing(rfc, "deploy")
            if failed:
                gates.note_refusal(rfc, "deploy", [g.as_dict() for g in failed])
                self.set_state(
                    S.FAILED,
                    finished_at=now,
                    outcome="Refused before touching PROD: "
                    + "; ".join(f"{g.name} — {g.reason}" for g in failed),
                )
                return S.FAILED
        self.set_state(
            S.RUNNING,
            started_at=now,
            window_ends_at=window_end,
            next_action_at=now,
            gates_at_start=[g.as_dict() for g in gates.evaluate(rfc, "deploy")]
            if self.env.tier == Tier.PROD
            else [],
            fingerprint_before=self.fingerprint_now(),
        )
        return None

    def fingerprint_now(self) -> dict:
        from plant.evidence import compute_fingerprint

        try:
            return compute_fingerprint(Environment.objects.get(pk=self.env.pk))
        except Exception:  # a fingerprint must never stop a deployment
            logger.warning("fingerprint of %s not taken", self.env, exc_info=True)
            return {}

    def promotion_refusal(self) -> str | None:
        """X5 asked again by the worker: the artifact it carries is the release's, it succeeded in the
        tier before, and no other deployment of the RFC runs at the site."""
        d, release = self.deployment, self.deployment.rfc.release
        if d.artifact_sha256 and d.artifact_sha256 != release.artifact_sha256:
            return (
                f"the release's artifact changed since this deployment was booked "
                f"({d.artifact_sha256[:12]}… then, {release.artifact_sha256[:12]}… now)."
            )
        return promotion.refusal(d.rfc, self.env, d.scheduled_start, d.scheduled_end, exclude=d)

    def window_end(self):
        """The end of the free interval the deployment was booked into (None: no calendar)."""
        d = self.deployment
        rules = rules_for(self.env)
        if not rules.enforced:
            return None
        for lo, hi in calendar.free_intervals(
            rules,
            d.scheduled_start - timedelta(days=1),
            d.scheduled_end + timedelta(days=1),
            emergency=d.emergency,
            handover_override=d.handover_override,
        ):
            if lo <= d.scheduled_start < hi:
                return hi
        return d.scheduled_start  # the calendar changed under it: no time left

    def window_closed(self) -> bool:
        end = self.deployment.window_ends_at
        return end is not None and clock.now() >= end

    # --- forward steps: True, "wait" or a reason to roll back ---
    def do_verify_checksum(self):
        release = self.deployment.rfc.release

        def action():
            ctx = self.context()
            if release.config and release_config.checksum(release.config) != release.config_sha256:
                return adapters.StepResult(
                    False,
                    f"the configuration bundles' SHA-256 is {release_config.checksum(release.config)}, not the "
                    f"{release.config_sha256} recorded with the release",
                    {"adapter": "checksum"},
                )
            if not ctx.artifact_path:
                return adapters.StepResult(
                    bool(release.artifact_sha256),
                    f"artifact held by reference; recorded SHA-256 {release.artifact_sha256}",
                    {"adapter": "checksum"},
                )
            digest = hashlib.sha256()
            with open(ctx.artifact_path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            ok = digest.hexdigest() == release.artifact_sha256
            return adapters.StepResult(
                ok,
                f"SHA-256 {digest.hexdigest()} "
                f"{'matches' if ok else 'DIFFERS FROM'} the {release.artifact_sha256} recorded "
                "at upload",
                {"adapter": "checksum", "sha256": digest.hexdigest()},
            )

        result = self.step("forward", "verify_checksum", action)
        return True if result.ok else "The artifact is not the one that was approved (checksum differs)."

    def do_baseline(self):
        result = self.adapter_step("forward", "baseline", "smoke", every=True)
        return (
            True if result.ok else "The smoke test fails before the change: the environment is not healthy."
        )

    def do_vm_snapshot(self):
        return (
            True if self.adapter_step("forward", "vm_snapshot", "vm_snapshot").ok else "VM snapshot failed."
        )

    def do_snapshot(self):
        return (
            True
            if self.adapter_step("forward", "snapshot", "snapshot").ok
            else "Snapshot failed; nothing applied."
        )

    def do_backup(self):
        return (
            True if self.adapter_step("forward", "backup", "backup").ok else "Backup failed; nothing applied."
        )

    def finished(self, name: str) -> bool:
        return DeploymentStep.objects.filter(
            deployment=self.deployment,
            phase="forward",
            name=name,
            state__in=[StepState.SUCCEEDED, StepState.SIMULATED, StepState.SKIPPED],
        ).exists()

    def do_apply(self):
        if not self.finished("apply") and self.window_closed():
            return "The window closed before the apply step could start."
        if self.deployment.rfc.release.config_only:  # nothing to install: the config step applies it
            self.step(
                "forward",
                "apply",
                lambda: adapters.StepResult(
                    True, "configuration-only release: nothing to install or migrate", {"adapter": "none"}
                ),
            )
            return True
        return True if self.adapter_step("forward", "apply", "apply").ok else "Apply failed."

    def config_keep(self) -> Path:
        return adapters.work_dir(self.deployment.uuid) / "config-before"

    def do_config(self):
        """The release's configuration bundles written to the environment's configuration folder, the
        files they replace kept for the rollback. Fail closed: configuration and nowhere to put it."""
        release = self.deployment.rfc.release
        folder = plant_config.folder_of(self.env)

        def action():
            if not release.config:
                return None
            if folder is None:
                return adapters.StepResult(
                    False,
                    f"the release carries configuration ({', '.join(release.config)}) but {self.env} has no "
                    'folder for it: add "config": {"adapter": "config_dir", "path": "<folder>"} to its pipeline',
                )
            before = plant_config.read(folder) if folder.is_dir() else {}
            written = plant_config.write(folder, release.config, self.config_keep())
            changed = release_config.diff(before, {**before, **release.config})
            lines = [f"{b} · {k}: {x if x is not None else '—'} → {y}" for b, k, x, y in changed[:50]]
            return adapters.StepResult(
                True,
                f"wrote {', '.join(written)} to {folder} ({len(changed)} setting(s) changed)\n"
                + "\n".join(lines),
                {"adapter": "config_dir", "bundles": written, "changed": len(changed)},
            )

        try:
            result = self.step("forward", "config", action)
        except plant_config.ConfigError as exc:
            return f"Configuration not written: {exc}"
        return True if result.ok else "Configuration not written."

    def do_equipment(self):
        if not self.finished("equipment") and self.window_closed():
            return "The window closed before the equipment step could start."
        return True if self.adapter_step("forward", "equipment", "equipment").ok else "Equipment step failed."

    def do_wait(self):
        d = self.deployment
        row = DeploymentStep.objects.filter(deployment=d, phase="forward", name="wait").first()
        if row is not None and row.state == StepState.SUCCEEDED:
            return True
        delay = int(self.pipeline.get("smoke_delay_seconds", self.env.smoke_test_minutes * 60))
        now = clock.now()
        if row is None:
            until = now + timedelta(seconds=delay)
            DeploymentStep.objects.create(
                deployment=d,
                order=FORWARD.index("wait"),
                phase="forward",
                name="wait",
                adapter="timer",
                started_at=now,
                worker=self.owner,
                result={"until": until.isoformat(), "seconds": delay},
                output=f"smoke test at T+{delay} s",
            )
        else:
            from datetime import datetime

            until = datetime.fromisoformat(row.result["until"])
        if now < until:
            self.set_state(S.VERIFYING, next_action_at=until)
            return "wait"
        DeploymentStep.objects.filter(deployment=d, phase="forward", name="wait").update(
            state=StepState.SUCCEEDED, finished_at=now
        )
        return True

    def do_smoke(self):
        result = self.adapter_step("forward", "smoke", "smoke", every=True)
        if result.ok:
            return True
        failed = [c["name"] for c in result.data.get("checks", []) if not c["ok"]]
        return "The smoke test failed" + (f": {', '.join(failed)}." if failed else ".")

    def do_compare(self):
        steps = {
            s.name: s
            for s in DeploymentStep.objects.filter(
                deployment=self.deployment, phase="forward", name__in=["baseline", "smoke"]
            )
        }

        def action():
            before = steps.get("baseline").result.get("latency_ms") if steps.get("baseline") else None
            after = steps.get("smoke").result.get("latency_ms") if steps.get("smoke") else None
            if before is None or after is None:
                return None
            noise = float(settings.SMOKE_NOISE_MS)
            limit = max(before * (1 + PERFORMANCE_TOLERANCE), before + noise)
            ok = after <= limit
            change = (after - before) / before * 100 if before else 0.0
            return adapters.StepResult(
                ok,
                f"latency {after:.1f} ms after vs {before:.1f} ms before ({change:+.0f} %); "
                f"limit {limit:.1f} ms (+{PERFORMANCE_TOLERANCE:.0%}, at least +{noise:.0f} ms)",
                {
                    "adapter": "compare",
                    "before_ms": before,
                    "after_ms": after,
                    "change_percent": round(change, 1),
                },
            )

        result = self.step("forward", "compare", action)
        return True if result.ok else "Performance is more than 20 % worse than before the change."

    def do_signal_baseline(self):
        """The business signals just before the apply: the baseline they are compared with after it."""

        def action():
            if not any("good" in spec for spec in signals.declared(self.env)):
                return None
            values = signals.baseline(self.env)
            lines = [
                f"[{name}] {v['value']:g}" if "value" in v else f"[{name}] could not be read: {v['error']}"
                for name, v in values.items()
            ]
            return adapters.StepResult(True, "\n".join(lines), {"adapter": "signals", "signals": values})

        self.step("forward", "signal_baseline", action)
        return True  # a signal that could not be read fails after the apply, where it is judged

    def do_signals(self):
        """After the smoke test: each business signal against its baseline, and every terminal on the
        new version within its `within_minutes` (waiting for them as for the smoke test). A breach rolls
        back and names the signal."""
        d, release = self.deployment, self.deployment.rfc.release
        waiting_for = signals.terminal_specs(self.env)
        if waiting_for and not self.finished("signals"):
            applied = (
                DeploymentStep.objects.filter(deployment=d, phase="forward", name="apply")
                .values_list("finished_at", flat=True)
                .first()
            ) or clock.now()
            deadline = applied + timedelta(minutes=max(int(s.get("within_minutes", 30)) for s in waiting_for))
            behind = any(signals.terminals_behind(self.env, spec, release.version) for spec in waiting_for)
            now = clock.now()
            if behind and now < deadline:
                due = min(deadline, now + timedelta(seconds=60))
                if d.state == S.RUNNING:
                    self.set_state(S.VERIFYING, next_action_at=due)
                else:
                    Deployment.objects.filter(pk=d.pk).update(next_action_at=due)
                return "wait"
        baseline = (
            DeploymentStep.objects.filter(deployment=d, phase="forward", name="signal_baseline")
            .values_list("result", flat=True)
            .first()
        ) or {}

        def action():
            if not signals.declared(self.env):
                return None
            readings = signals.compare(self.env, baseline.get("signals") or {})
            for spec in waiting_for:
                behind = signals.terminals_behind(self.env, spec, release.version)
                text = (
                    f"{len(behind)} terminal(s) not on {release.version} after {spec.get('within_minutes', 30)} "
                    f"minutes: {', '.join(behind[:5])}"
                    if behind
                    else f"every terminal runs {release.version}"
                )
                readings.append(
                    signals.Reading(spec["name"], "terminals", not behind, text, float(len(behind)))
                )
            if not readings:
                return None
            return adapters.StepResult(
                all(r.ok for r in readings),
                "\n".join(f"[{r.name}] {'ok' if r.ok else 'BREACHED'}: {r.text}" for r in readings),
                {"adapter": "signals", "signals": [r.as_dict() for r in readings]},
            )

        result = self.step("forward", "signals", action)
        if result.ok:
            return True
        breached = [r for r in result.data.get("signals", []) if not r["ok"]]
        return "Business signal breached: " + "; ".join(f"{r['name']} — {r['text']}" for r in breached) + "."

    def do_commit(self):
        def action():
            from environments.services import record_deployed_version

            product, version = self.deployment.rfc.release.product, self.deployment.rfc.release.version
            before = record_deployed_version(self.env, version, self.deployment)  # per product (E9)
            return adapters.StepResult(
                True,
                f"{self.env} now runs {product} {version} (was {before or '—'})",
                {"adapter": "portal", "product": product, "version": version, "previous": before},
            )

        return True if self.step("forward", "commit", action).ok else "Commit failed."

    # --- rollback and the end ---
    def rollback(self, why: str) -> str:
        d = self.deployment
        if d.state != S.ROLLING_BACK:
            self.set_state(
                S.ROLLING_BACK, outcome=why, next_action_at=clock.now(), rollback_started_at=clock.now()
            )
        elif d.rollback_started_at is None:
            Deployment.objects.filter(pk=d.pk).update(rollback_started_at=clock.now())
            d.rollback_started_at = clock.now()
        started = d.rollback_started_at or clock.now()
        steps = {row.name: row for row in DeploymentStep.objects.filter(deployment=d, phase="forward")}
        changed = [name for name in UNSAFE_TO_REPEAT if name in steps]
        if not changed and not DeploymentStep.objects.filter(deployment=d, phase="rollback").exists():
            # Nothing was applied: there is nothing to restore (snapshot failure → nothing applied).
            return self.finish(S.FAILED, f"{why} Nothing was applied.")
        taken = {
            name for name, row in steps.items() if row.state in (StepState.SUCCEEDED, StepState.SIMULATED)
        }
        results = []
        if "equipment" in steps:  # the previous recipe pushed back (simulated outside PROD, E5)
            results.append(self.adapter_step("rollback", "revert_equipment", "equipment", restore=True))
        if "snapshot" in taken:  # application files: no production data in them
            results.append(self.adapter_step("rollback", "restore_snapshot", "snapshot", restore=True))
        if "config" in taken and steps["config"].result.get("bundles"):  # the settings as they were
            results.append(self.step("rollback", "restore_config", self.restore_config))
        kept = self.undo(steps.get("apply"))
        if kept is None:  # no undo script, or it failed or did not verify: restore, and say what is lost
            if "vm_snapshot" in taken:
                results.append(self.adapter_step("rollback", "restore_vm", "vm_snapshot", restore=True))
            lost = self.discarded(steps.get("backup")) if "backup" in taken else None
            if "backup" in taken:
                results.append(self.adapter_step("rollback", "restore_backup", "backup", restore=True))
            results.append(self.adapter_step("rollback", "verify_rollback", "smoke", every=True))
            rpo = lost or {"how": "nothing to restore", "seconds": 0, "tables": []}
        else:
            results.append(kept)
            rpo = {"how": "undo script", "seconds": 0, "tables": [], "kept": True}
            if "backup" in taken:  # what the line wrote since the backup, and still has
                since = self.discarded(steps.get("backup"))
                rpo["rows_kept"] = {
                    name: since["rows_now"][name] - since.get("rows_in_backup", {}).get(name, 0)
                    for name in since.get("rows_now", {})
                    if since["rows_now"][name] > since.get("rows_in_backup", {}).get(name, 0)
                }
        seconds = (clock.now() - started).total_seconds()
        Deployment.objects.filter(pk=d.pk).update(rpo=rpo)
        d.rpo = rpo
        if all(r.ok for r in results):
            outcome = f"{why} Rolled back and verified in {seconds:.1f} s. {describe_rpo(rpo)}"
            return self.finish(S.ROLLED_BACK, outcome, rollback_seconds=seconds)
        self.finish(
            S.ROLLBACK_FAILED,
            f"{why} The rollback FAILED: the environment needs a person now.\n\n"
            + self.recovery_instructions(),
            rollback_seconds=seconds,
        )
        self.alert()
        return S.ROLLBACK_FAILED

    def restore_config(self) -> adapters.StepResult:
        folder = plant_config.folder_of(self.env)
        try:
            restored = plant_config.restore(folder, self.config_keep())
        except (plant_config.ConfigError, OSError, TypeError) as exc:
            return adapters.StepResult(False, f"configuration not restored: {exc}")
        return adapters.StepResult(
            True,
            f"restored {', '.join(restored)} in {folder}",
            {"adapter": "config_dir", "bundles": restored},
        )

    def undo(self, apply_row) -> adapters.StepResult | None:
        """R3: the release's undo script in one transaction, then the smoke test. The result when the
        database is back without a restore (production data kept), else None (restore instead)."""
        release = self.deployment.rfc.release
        sql_failed = False
        if apply_row is not None and apply_row.state == StepState.FAILED:
            sql = [c for c in (apply_row.result or {}).get("checks", []) if c.get("adapter") == "sql"]
            sql_failed = bool(sql) and not sql[0]["ok"]  # the migration's own transaction kept nothing
        if release.migration_sql.strip() and not sql_failed:
            if not release.undo_sql.strip():
                return None
            undone = self.adapter_step(
                "rollback", "undo", "apply", restore=True, only=lambda item: item.get("adapter") == "sql"
            )
            if not undone.ok:
                return None
        # No data change to undo (no migration, or it never committed), or the undo script ran.
        verified = self.adapter_step("rollback", "verify_undo", "smoke", every=True)
        return verified if verified.ok else None

    def discarded(self, backup_row) -> dict:
        """The RPO of a restore: the time since the backup was taken, and the tables whose rows differ
        between the live database and the backup (production writes and the release's own changes)."""
        since = backup_row.finished_at if backup_row is not None else None
        lost = {
            "how": "backup restore",
            "since": since.isoformat() if since else None,
            "seconds": round((clock.now() - since).total_seconds(), 1) if since else None,
            "tables": [],
        }
        backup = (backup_row.result or {}).get("backup") if backup_row is not None else None
        try:
            if backup:
                live, copy = database_of(self.env).checksum(), SqliteDatabase(backup).checksum()
                lost["tables"] = sorted(
                    name
                    for name in set(live.tables) | set(copy.tables)
                    if live.tables.get(name) != copy.tables.get(name)
                )
                lost["rows_now"] = {
                    name: live.tables[name]["rows"] for name in lost["tables"] if name in live.tables
                }
                lost["rows_in_backup"] = {
                    name: copy.tables[name]["rows"] for name in lost["tables"] if name in copy.tables
                }
            else:
                lost["tables_note"] = "tables not compared: the backup is not a SQLite file"
        except Exception as exc:  # measuring the loss must never stop the restore
            lost["tables_note"] = f"tables not compared: {exc}"
        return lost

    def recovery_instructions(self) -> str:
        """What a person does when the rollback failed: the journal's facts, in order."""
        rows = {
            row.name: row
            for row in DeploymentStep.objects.filter(
                deployment=self.deployment, phase__in=["forward", "rollback"]
            )
        }
        failed = [
            name for name, row in rows.items() if row.state in (StepState.FAILED, StepState.INTERRUPTED)
        ]
        lines = [
            "Manual recovery:",
            f"1. Stop changes to {self.env} and tell the shift lead; failed steps: {', '.join(failed) or 'none recorded'}.",
        ]
        snapshot = (rows.get("snapshot").result or {}).get("snapshot") if rows.get("snapshot") else None
        backup = rows.get("backup")
        backup_file = (
            (backup.result or {}).get("backup") or (backup.result or {}).get("dump") if backup else None
        )
        if snapshot:
            lines.append(f"2. Restore the application files from the snapshot at {snapshot}.")
        if backup_file:
            lines.append(f"3. Restore the database from the verified backup at {backup_file}.")
        lines.append("4. Run the smoke test by hand, then record what you did on this deployment's RFC.")
        return "\n".join(lines)

    def overdue_check(self) -> None:
        """X4: a rollback step that ends past the environment's budget (default 15 minutes) alerts at
        once, once; the beat sweep does the same for a worker stuck inside a step."""
        started = self.deployment.rollback_started_at
        if started is not None and clock.now() - started > timedelta(
            minutes=self.env.rollback_budget_minutes
        ):
            alert_overdue(self.deployment.pk)

    def finish(self, state: str, outcome: str, rollback_seconds: float | None = None) -> str:
        now = clock.now()
        self.set_state(state, finished_at=now, outcome=outcome, next_action_at=None)
        if self.env.pipeline and not (state == S.FAILED and not self.deployment.started_at):
            from plant.evidence import record_fingerprint

            try:
                # Drift is measured against what now runs (E8): read afresh after the commit.
                after = record_fingerprint(self.env)
                Deployment.objects.filter(pk=self.deployment.pk).update(fingerprint_after=after)
            except Exception:  # a fingerprint must never turn a deployment's outcome into an error
                logger.warning("fingerprint of %s not recorded", self.env, exc_info=True)
        if rollback_seconds is not None:
            record(
                "releases.deployment.rollback_timed",
                self.deployment,
                actor_name="system",
                after={
                    "seconds": round(rollback_seconds, 1),
                    "target_seconds": self.env.rollback_budget_minutes * 60,
                    "rpo": self.deployment.rpo,
                },
            )
        return state

    def alert(self) -> None:
        people = responders(self.env.site)
        if not people:
            return
        d = self.deployment
        body = _("URGENT: the rollback of %(rfc)s on %(environment)s failed.") % {
            "rfc": d.rfc.number,
            "environment": self.env,
        } + (
            f"\n\n{d.outcome}\n\n"
            + _("Deployment: %(url)s")
            % {"url": absolute_url(reverse("releases:deployment", args=[d.rfc.uuid, d.uuid]))}
            + "\n"
        )  # the outcome carries the manual-recovery instructions
        urgent(
            _("[URGENT] Rollback failed: %(rfc)s on %(environment)s")
            % {"rfc": d.rfc.number, "environment": self.env},
            body,
            sorted(people),
            about=d,
        )
        record("releases.deployment.alerted", d, actor_name="system", after={"to": sorted(people)})


def deployment_url(deployment: Deployment) -> str:
    return absolute_url(reverse("releases:deployment", args=[deployment.rfc.uuid, deployment.uuid]))


def urgent(subject: str, body: str, to: list[str], *, about) -> None:
    """An urgent deployment alert through the outbox (recorded, retried, never lost)."""
    outbox.urgent(subject, body, to, about=about, kind="deployments.alert")


def responders(site) -> list[str]:
    """Who is told at once when a rollback goes wrong: the site's release managers and admins."""
    from approvals.services import holders

    return sorted(
        {u.email for role in (Role.RELEASE_MANAGER, Role.ADMIN) for u in holders(role, site) if u.email}
    )


def describe_rpo(rpo: dict) -> str:
    """The RPO in a release manager's words (shown on the deployment page and in the outcome)."""
    if not rpo:
        return ""
    if rpo.get("kept") or rpo.get("how") in ("undo script", "nothing to restore"):
        kept = rpo.get("rows_kept") or {}
        if kept:
            rows = ", ".join(f"{name} +{count}" for name, count in sorted(kept.items()))
            return _(
                "No production data was discarded (RPO 0 s): rows written since the backup are kept (%(rows)s)."
            ) % {"rows": rows}
        return _("No production data was discarded (RPO 0 s).")
    span = f"{rpo['seconds']:.0f} s" if rpo.get("seconds") is not None else _("an unknown time span")
    tables = ", ".join(rpo.get("tables") or []) or _("none found")
    return _(
        "Restored from the backup: production data written in the %(span)s since it was taken is lost "
        "(RPO %(span)s); tables touched since the backup: %(tables)s."
    ) % {"span": span, "tables": tables}


def alert_overdue(deployment_id: int) -> bool:
    """Send the urgent "rollback past its budget" alert once (two beats and the worker may all ask)."""
    now = clock.now()
    if not Deployment.objects.filter(pk=deployment_id, rollback_alerted_at__isnull=True).update(
        rollback_alerted_at=now
    ):
        return False
    d = Deployment.objects.select_related("rfc", "environment", "environment__site").get(pk=deployment_id)
    env = d.environment
    people = responders(env.site)
    minutes = (now - d.rollback_started_at).total_seconds() / 60 if d.rollback_started_at else 0
    if people:
        urgent(
            _("[URGENT] Rollback past %(budget)s minutes: %(rfc)s on %(environment)s")
            % {"budget": env.rollback_budget_minutes, "rfc": d.rfc.number, "environment": env},
            (
                _(
                    "URGENT: the rollback of %(rfc)s on %(environment)s has run %(minutes)s minutes, past its "
                    "budget of %(budget)s minutes."
                )
                % {
                    "rfc": d.rfc.number,
                    "environment": env,
                    "minutes": f"{minutes:.0f}",
                    "budget": env.rollback_budget_minutes,
                }
                + f"\n\n{d.outcome}\n\n"
                + _("Deployment: %(url)s")
                % {"url": absolute_url(reverse("releases:deployment", args=[d.rfc.uuid, d.uuid]))}
                + "\n"
            ),
            people,
            about=d,
        )
    record(
        "releases.deployment.rollback_overdue",
        d,
        actor_name="system",
        after={"minutes": round(minutes, 1), "budget_minutes": env.rollback_budget_minutes, "to": people},
    )
    return True


def overdue_rollbacks() -> list[int]:
    """Beat's sweep (X4): rollbacks past their environment's budget that nobody was told about yet."""
    now = clock.now()
    sent = []
    for d in Deployment.objects.filter(
        state=S.ROLLING_BACK, rollback_started_at__isnull=False, rollback_alerted_at__isnull=True
    ).select_related("environment"):
        overdue = now - d.rollback_started_at > timedelta(minutes=d.environment.rollback_budget_minutes)
        if overdue and alert_overdue(d.pk):
            sent.append(d.pk)
    return sent
