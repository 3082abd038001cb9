"""Chaos soak of the deployment engine: many deployments, workers killed, Redis flushed, PostgreSQL
restarted — and afterwards nothing lost, nothing applied twice, the audit chain whole.

    .venv/bin/python bench/soak.py            # 1,000 deployments, >= 20 kills, 5 flushes, 3 restarts
    .venv/bin/python bench/soak.py --short    # 50 deployments, 3 kills, 1 flush, 1 restart (CI)

Everything is private to the run: a PostgreSQL cluster initdb'd into a temp dir on a free port
(restarted with `pg_ctl restart -m fast`), a `redis-server` on a free port without persistence (the
only Redis this script ever flushes), VAR_DIR and the demo plant under a temp dir. DATABASE_URL and
REDIS_URL of the caller are ignored.

The run: THREE real Celery workers (solo pool) and TWO real `celery beat` processes with the project's
schedule. Beat's dispatch period is DEPLOYMENT_DISPATCH_SECONDS, set to 1 s here (the setting's
minimum) instead of 5 s, so two beats are real schedulers racing for the same due rows each second;
the lease is DEPLOYMENT_LEASE_SECONDS=8 and a dispatched deployment whose nudge was lost is sent again
after DEPLOYMENT_REDISPATCH_SECONDS=4, so a killed worker's deployment is taken up again within seconds
rather than minutes. The smoke delay is the pipeline's `smoke_delay_seconds` (1 s, not 15 minutes).

Deployments go to the DEV environments of several demo-plant sites ("lanes"), so that they run in
parallel; on one environment they follow each other as real bookings do (the next is booked, a moment
ahead, when the previous has ended). Each has its own release: a good one, or (a share) one whose smoke
test fails, so rollbacks happen. Each release's SQL records itself in the plant's `soak_schema_log`
(migrate, undo) and the plant's installer and equipment command count each install, push and revert in
the environment's `ledger.jsonl` (demo_plant/ledger.py) with the deployment that asked.

Chaos, spread over the run by progress: SIGKILL of a worker (chosen by watching the journal: one whose
deployment is inside its apply step, one inside a rollback step, or any busy one), restarted at once;
FLUSHALL of the private Redis; restart of the private PostgreSQL. `--signal QUIT` (or TERM) sends that
signal up to three times instead of SIGKILL: Celery's cold shutdown around a step's commit (FAULTS.md case 23); a
worker still alive 30 s later is killed.

At the end: every deployment terminal, none lost, its outcome the one its release and the chaos allow,
every plant effect counted at most once and as often as the journal says it ran, the audit chain valid.
Prints the figures; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack, suppress
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from harness import (  # noqa: E402
    PrivatePostgres,
    PrivateRedis,
    demo_plant_server,
    start_beat,
    start_worker,
    stop,
    summary,
)

WORKERS, BEATS = 3, 2
SETTINGS = {
    "DEPLOYMENT_DISPATCH_SECONDS": "1",
    "DEPLOYMENT_LEASE_SECONDS": "8",
    "DEPLOYMENT_REDISPATCH_SECONDS": "4",
    # The compare step's noise floor: on two shared cores a label's latency jitters by far more than
    # 15 ms, and a good release rolled back for "performance" is noise here, not what is tested.
    "SMOKE_NOISE_MS": "2000",
}
SMOKE_DELAY_SECONDS = 1
LOG = "CREATE TABLE IF NOT EXISTS soak_schema_log (id INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL);"


def log_sql(change: str, kind: str) -> str:
    return (
        f"{LOG}\nINSERT INTO soak_schema_log (change, kind, at) "
        f"VALUES ('{change}', '{kind}', strftime('%Y-%m-%dT%H:%M:%f', 'now'));"
    )


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- Database calls that survive a PostgreSQL restart ----------------------------------------------
def retrying(fn, *args, attempts: int = 120, **kwargs):
    """Run `fn` (a short transaction); on a lost connection, drop it and try again shortly."""
    from django.db import InterfaceError, OperationalError, connection

    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            with suppress(Exception):
                connection.close()
            time.sleep(0.25)
    return None


# --- The world -------------------------------------------------------------------------------------
def setup_world(lanes: int, tmp: Path):
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from core.roles import Role
    from demo_plant.artifacts import build
    from demo_plant.layout import ensure_environment
    from environments import access
    from environments.models import TIER_DEFAULTS, Environment, ProductVersion, Site, Tier
    from environments.roles_setup import ensure_role_groups
    from releases import services

    groups = ensure_role_groups()
    user = User.objects.create_user("soak", "soak@plant.test", "soak-password-not-used")
    user.groups.add(groups[Role.DEVELOPER])
    access.forget(user)
    root = tmp / "plant"
    envs = []
    for n in range(1, lanes + 1):
        site = Site.objects.create(code=f"SOAK{n}", name=f"Soak plant {n}", timezone="UTC")
        made = {
            tier: Environment.objects.create(
                site=site, tier=tier, equipment_writes=tier == Tier.PROD, **TIER_DEFAULTS[tier]
            )
            for tier in (Tier.DEV, Tier.UAT, Tier.PROD)
        }
        ProductVersion.objects.bulk_create(
            ProductVersion(environment=env, product="MES", version="2.3.1") for env in made.values()
        )
        ensure_environment(root, site.code, Tier.DEV)
        envs.append(made[Tier.DEV])
    # Two stored artifacts; every deployment's own release points at one of them.
    artifacts = build(tmp / "artifacts")
    templates = {
        kind: services.create_release(
            user,
            product="MES",
            version=version,
            artifact=SimpleUploadedFile(artifacts[kind].name, artifacts[kind].read_bytes()),
        )
        for kind, version in (("good", "2.4.1"), ("bad", "2.4.2"))
    }
    return user, envs, templates, root


def make_deployment(i: int, kind: str, env, user, templates):
    """Book deployment number i on `env`: its own release (a good or a bad artifact, SQL that records
    itself), its own RFC, a start a moment ahead. One transaction: a PostgreSQL restart leaves all or
    nothing, and a retry finds what an ambiguous commit left."""
    from django.db import transaction

    from core import clock
    from deployments.models import Deployment
    from releases import services
    from releases.models import Release

    version = f"{3 if kind == 'good' else 4}.0.{i}"
    existing = Deployment.objects.filter(rfc__release__version=version, rfc__release__product="MES").first()
    if existing is not None:
        return existing
    template = templates[kind]
    with transaction.atomic():
        release = Release.objects.create(
            product="MES",
            version=version,
            notes=f"Soak deployment {i} ({kind}).",
            artifact_file=template.artifact_file,
            artifact_name=template.artifact_name,
            artifact_size=template.artifact_size,
            artifact_sha256=template.artifact_sha256,
            config_sha256=template.config_sha256,
            migration_sql=log_sql(version, "migrate"),
            undo_sql=log_sql(version, "undo"),
            created_by=user,
        )
        rfc = services.create_rfc(
            user,
            title=f"Soak {i}: MES {version}",
            description="Chaos soak of the deployment engine.",
            release=release,
            rollback_plan="Automatic rollback.",
            estimated_downtime_minutes=1,
            retraining_note="None.",
            impacts=[{"site": env.site, "lines": ["Line 2"], "modules": ["Labelling"]}],
        )
        start = clock.now() + timedelta(seconds=random.uniform(0.3, 2.0))
        return Deployment.objects.create(
            rfc=rfc,
            environment=env,
            scheduled_start=start,
            scheduled_end=start + timedelta(minutes=30),
            duration_minutes=1,
            scheduled_by=user,
        )


# --- Processes under chaos -------------------------------------------------------------------------
class Fleet:
    """The workers: killed by pid, restarted at once under the same name."""

    def __init__(self, env: dict, signal_name: str = "KILL"):
        self.env = env
        self.signal = getattr(signal, f"SIG{signal_name}")
        self.workers: dict[str, object] = {}
        self.logs: list[str] = []
        self.lock = threading.Lock()

    def start(self, name: str) -> None:
        self.workers[name] = start_worker(name, self.env)

    def by_pid(self, pid: int) -> str | None:
        return next((name for name, p in self.workers.items() if p.pid == pid), None)

    def kill(self, name: str) -> None:
        with self.lock:
            process = self.workers[name]
            if self.signal == signal.SIGKILL:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            else:  # three times, as an impatient operator: Celery's cold shutdown, then its forced end
                for _ in range(3):
                    with suppress(ProcessLookupError):
                        os.kill(process.pid, self.signal)
                    try:
                        process.wait(timeout=0.2)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            self.logs.extend(process.log)
            self.start(name)

    def close(self) -> None:
        for process in self.workers.values():
            stop(process)
            self.logs.extend(process.log)


class Chaos(threading.Thread):
    """Kills, flushes and restarts, each when the run's progress passes its mark."""

    def __init__(self, args, fleet: Fleet, pg: PrivatePostgres, redis: PrivateRedis, progress):
        super().__init__(daemon=True)
        self.fleet, self.pg, self.redis, self.progress = fleet, pg, redis, progress
        events = [("kill", k) for k in range(args.kills)]
        events += [("flush", k) for k in range(args.flushes)]
        events += [("restart", k) for k in range(args.restarts)]
        rng = random.Random(args.seed + 1)
        marks = sorted(rng.uniform(0.04, 0.85) for _ in events)
        rng.shuffle(events)
        # The first kills aim at an apply and at a rollback: those are what the soak is about.
        self.plan = list(zip(marks, events, strict=True))
        self.targets = ["apply", "rollback", "any"]
        self.done: Counter = Counter()
        self.kills: list[dict] = []
        self.restart_seconds: list[float] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            for mark, (what, k) in self.plan:
                while self.progress() < mark:
                    if self.stopping.wait(0.1):
                        return
                if what == "kill":
                    if not self.kill(self.targets[k % len(self.targets)]):
                        continue  # the run ended first: not counted (the end says "only N of M kills")
                elif what == "flush":
                    self.redis.flushall()
                    say("chaos: FLUSHALL on the private Redis")
                else:
                    seconds = self.pg.restart()
                    self.restart_seconds.append(seconds)
                    say(f"chaos: PostgreSQL restarted (pg_ctl restart -m fast, {seconds:.1f} s)")
                self.done[what] += 1
        except Exception as exc:  # a chaos failure is a failed run, said at the end
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def running_step(self, target: str):
        """A journal row running now in one of our workers: (worker name, step row) or None."""
        from deployments.models import DeploymentStep, StepState

        rows = DeploymentStep.objects.filter(state=StepState.RUNNING).exclude(name="wait")
        if target == "apply":
            rows = rows.filter(phase="forward", name__in=["apply", "equipment"])
        elif target == "rollback":
            rows = rows.filter(phase="rollback")
        for row in rows.order_by("-started_at")[:10]:
            try:
                pid = int(row.worker.split(":")[1])
            except (IndexError, ValueError):
                continue
            name = self.fleet.by_pid(pid)
            if name is not None:
                return name, row
        return None

    def kill(self, target: str) -> bool:
        """SIGKILL a worker inside a `target` step (watching the journal); after 10 s of looking, any
        worker inside any step; after 10 s more, any worker (a kill the run outlives is reported, not counted)."""
        began = time.monotonic()
        found, aimed = None, target
        while found is None and not self.stopping.is_set():
            waited = time.monotonic() - began
            if waited > 10:
                aimed = "any"
            found = retrying(self.running_step, aimed)
            if found is None and waited > 20:
                found = (random.choice(sorted(self.fleet.workers)), None)
            if found is None:
                time.sleep(0.02)
        if found is None:
            return False
        name, row = found
        self.fleet.kill(name)
        where = f"{row.phase} step '{row.name}' of deployment {row.deployment_id}" if row else "between steps"
        self.kills.append(
            {
                "target": target,
                "phase": row.phase if row else "",
                "step": row.name if row else "",
                "deployment": row.deployment_id if row else None,
            }
        )
        say(f"chaos: SIG{self.fleet.signal.name[3:]} {name} in the {where} (aimed at: {target}); restarted")
        return True


# --- The run ---------------------------------------------------------------------------------------
def drive(args, user, envs, templates, chaos_holder) -> tuple[list[dict], float, bool]:
    """Book deployments lane by lane until all are booked and ended (or the time is up)."""
    from deployments.models import Deployment
    from deployments.states import TERMINAL

    rng = random.Random(args.seed)
    plan = ["bad" if rng.random() < args.bad_share else "good" for _ in range(args.deployments)]
    booked: list[dict] = []
    active: dict[int, int | None] = dict.fromkeys(range(len(envs)))
    ended = 0
    began = time.monotonic()
    deadline = began + args.timeout
    chaos_holder["progress"] = lambda: ended / max(1, args.deployments)
    last_note = began
    while time.monotonic() < deadline:
        busy = [pk for pk in active.values() if pk is not None]
        if busy:
            done = set(
                retrying(
                    lambda busy=busy: list(
                        Deployment.objects.filter(pk__in=busy, state__in=TERMINAL).values_list(
                            "pk", flat=True
                        )
                    )
                )
            )
            for lane, pk in active.items():
                if pk in done:
                    active[lane] = None
                    ended += 1
        for lane, pk in active.items():
            if pk is None and len(booked) < args.deployments:
                i = len(booked) + 1
                d = retrying(make_deployment, i, plan[i - 1], envs[lane], user, templates)
                booked.append(
                    {"pk": d.pk, "kind": plan[i - 1], "lane": lane, "version": d.rfc.release.version}
                )
                active[lane] = d.pk
        if len(booked) == args.deployments and all(pk is None for pk in active.values()):
            return booked, time.monotonic() - began, True
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            say(f"progress: {ended}/{args.deployments} ended, {len(booked)} booked")
        time.sleep(0.1)
    return booked, time.monotonic() - began, False


def check(booked: list[dict], root: Path, envs) -> tuple[dict, list[str]]:
    """The figures and the anomalies, from the portal's rows and the plant's own counts."""
    import sqlite3

    from audit.services import verify
    from demo_plant import ledger
    from deployments.models import Deployment, DeploymentState, DeploymentStep, StepState
    from deployments.states import TERMINAL

    S = DeploymentState
    anomalies: list[str] = []
    ids = [b["pk"] for b in booked]
    rows = {d.pk: d for d in Deployment.objects.filter(pk__in=ids).select_related("rfc", "environment__site")}
    lost = [pk for pk in ids if pk not in rows]
    anomalies += [f"deployment {pk} lost: no row" for pk in lost]
    stuck = [d for d in rows.values() if d.state not in TERMINAL]
    anomalies += [f"deployment {d.pk} not terminal: {d.state}, attempts {d.attempts}" for d in stuck]

    journal: dict[int, dict[tuple[str, str], str]] = {}
    for step in DeploymentStep.objects.filter(deployment_id__in=ids).values(
        "deployment_id", "phase", "name", "state"
    ):
        journal.setdefault(step["deployment_id"], {})[(step["phase"], step["name"])] = step["state"]

    plant: dict[str, Counter] = {}
    sql: dict[str, Counter] = {}
    for env in envs:
        env_dir = root / env.site.code / env.tier
        for line in ledger.read(env_dir):
            plant.setdefault(line["deployment"], Counter())[line["action"]] += 1
        conn = sqlite3.connect(env_dir / "mes.sqlite3")
        try:
            with suppress(sqlite3.OperationalError):  # no table: no release recorded itself
                for change, kind in conn.execute("SELECT change, kind FROM soak_schema_log"):
                    sql.setdefault(change, Counter())[kind] += 1
        finally:
            conn.close()

    done_states = (StepState.SUCCEEDED, StepState.SIMULATED)
    twice = disagree = 0
    for b in booked:
        d = rows.get(b["pk"])
        if d is None:
            continue
        steps = journal.get(d.pk, {})
        counts = plant.get(str(d.pk), Counter()) + sql.get(b["version"], Counter())
        for effect, count in counts.items():
            if count > 1:
                twice += 1
                anomalies.append(f"deployment {d.pk}: the plant counted '{effect}' {count} times")
        restored = ("rollback", "restore_backup") in steps  # the database is back to before the apply
        expect = {
            "install": steps.get(("forward", "apply")),
            "push": steps.get(("forward", "equipment")),
            "revert": steps.get(("rollback", "revert_equipment")),
        }
        if not restored:
            expect["migrate"] = steps.get(("forward", "apply"))
            expect["undo"] = steps.get(("rollback", "undo"))
        for effect, state in expect.items():
            count = counts.get(effect, 0)
            if state is None and count:
                wrong = "the journal has no such step"
            elif state in done_states and count != 1:
                wrong = f"the journal says {state}"
            else:
                continue
            disagree += 1
            anomalies.append(f"deployment {d.pk}: the plant counted '{effect}' {count}×, {wrong}")
        # The outcome its release and the chaos allow.
        interrupted = any(
            steps.get(("forward", name)) in (StepState.INTERRUPTED, StepState.RUNNING)
            for name in ("apply", "equipment")
        )
        if d.state in TERMINAL:
            allowed = {S.ROLLED_BACK} if (b["kind"] == "bad" or interrupted) else {S.SUCCEEDED}
            if steps.get(("rollback", "revert_equipment")) == StepState.INTERRUPTED:
                allowed = {S.ROLLBACK_FAILED}  # the recipe's state is unknown: a person checks it
            if d.state not in allowed:
                anomalies.append(
                    f"deployment {d.pk} ({b['kind']} release) ended {d.state}: {d.outcome[:200]!r}"
                )

    # Each ending is in the audit trail once, in the same transaction as the state (FAULTS 24).
    from audit.actions import canonical
    from audit.models import AuditEvent

    endings = Counter(
        AuditEvent.objects.filter(
            object_type="deployments.deployment", object_id__in=[d.rfc.number for d in rows.values()]
        ).values_list("object_id", "action")
    )
    unaudited = 0
    for d in rows.values():
        if d.state in TERMINAL and endings[(d.rfc.number, canonical(f"releases.deployment.{d.state}"))] != 1:
            unaudited += 1
            anomalies.append(
                f"deployment {d.pk}: {endings[(d.rfc.number, canonical(f'releases.deployment.{d.state}'))]} "
                f"audit events for its ending '{d.state}', not 1"
            )
    chain = verify()
    if not chain.ok:
        anomalies.append(f"audit chain INVALID: {chain}")
    figures = {
        "states": Counter(d.state for d in rows.values()),
        "lost": len(lost),
        "stuck": len(stuck),
        "twice": twice,
        "unaudited": unaudited,
        "disagree": disagree,
        "audit": chain,
        "attempts": Counter(d.attempts for d in rows.values()),
        "lateness": [],
        "duration": [],
        "interrupted": sum(
            1 for s in journal.values() for state in s.values() if state == StepState.INTERRUPTED
        ),
    }
    first_steps = {}
    for step in (
        DeploymentStep.objects.filter(deployment_id__in=ids)
        .order_by("started_at")
        .values("deployment_id", "started_at")
    ):
        first_steps.setdefault(step["deployment_id"], step["started_at"])
    for d in rows.values():
        if d.pk in first_steps:
            figures["lateness"].append((first_steps[d.pk] - d.scheduled_start).total_seconds())
        if d.started_at and d.finished_at:
            figures["duration"].append((d.finished_at - d.started_at).total_seconds())
    return figures, anomalies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="50 deployments, 3 kills, 1 flush, 1 restart")
    parser.add_argument("--deployments", type=int)
    parser.add_argument("--kills", type=int)
    parser.add_argument("--flushes", type=int)
    parser.add_argument("--restarts", type=int)
    parser.add_argument("--lanes", type=int, default=6, help="DEV environments deployed to in parallel")
    parser.add_argument(
        "--bad-share", type=float, default=0.3, help="share of releases whose smoke test fails"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--signal",
        choices=("KILL", "QUIT", "TERM"),
        default="KILL",
        help="what a kill sends: SIGKILL (default), or SIGQUIT/SIGTERM up to three times (cold shutdown)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds for the whole run to end")
    args = parser.parse_args(argv)
    defaults = (50, 3, 1, 1) if args.short else (1000, 20, 5, 3)
    for name, value in zip(("deployments", "kills", "flushes", "restarts"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    if args.timeout is None:
        args.timeout = 180 + args.deployments * 4.0
    random.seed(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    pg, redis = PrivatePostgres("soak-pg-"), PrivateRedis()
    try:
        pg.start()
        redis.start()
        import psycopg

        with psycopg.connect(pg.url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "soak"')
        os.environ.update(
            {
                "DATABASE_URL": pg.url.rsplit("/", 1)[0] + "/soak",
                "REDIS_URL": redis.url,
                "VAR_DIR": str(tmp / "var"),
                "MEDIA_ROOT": str(tmp / "var" / "media"),
                "STATIC_ROOT": str(tmp / "var" / "staticfiles"),
                "DJANGO_SETTINGS_MODULE": "changecontrol.settings",
                "LOG_LEVEL": "WARNING",
                **SETTINGS,
            }
        )
        os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
        os.environ.pop("AUDIT_HEADS_FILE", None)
        return run(args, tmp, pg, redis)
    finally:
        with suppress(Exception):
            from django.db import connections

            connections.close_all()
        redis.close()
        pg.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: Path, pg: PrivatePostgres, redis: PrivateRedis) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    began = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    say(f"migrated in {time.monotonic() - began:.1f} s")
    user, envs, templates, root = setup_world(args.lanes, tmp)
    print("Chaos soak of the deployment engine")
    print(f"  machine:  {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}")
    print(
        f"  database: private PostgreSQL {connection.pg_version // 10000} on port {pg.port}; broker: private Redis on port {redis.port}"
    )
    print(
        f"  run:      {args.deployments} deployments over {args.lanes} DEV environments, {args.bad_share:.0%} bad "
        f"releases, {WORKERS} workers, {BEATS} beats; chaos: {args.kills} kills (SIG{args.signal}), {args.flushes} flushes, "
        f"{args.restarts} restarts; seed {args.seed}"
    )
    print(
        "  settings: "
        + " ".join(f"{k}={v}" for k, v in SETTINGS.items())
        + f" smoke_delay_seconds={SMOKE_DELAY_SECONDS}"
    )
    env = {**os.environ}
    connection.close()
    holder: dict = {}
    with ExitStack() as stack:
        base = stack.enter_context(demo_plant_server(root))
        from demo_plant.portal import pipeline

        for e in envs:
            e.pipeline = pipeline(root, e.site.code, e.tier, base, smoke_delay_seconds=SMOKE_DELAY_SECONDS)
            e.save(update_fields=["pipeline"])
        fleet = Fleet(env, args.signal)
        stack.callback(fleet.close)
        for n in range(WORKERS):
            fleet.start(f"soak{n + 1}")
        beats = [start_beat(tmp / f"beat{n + 1}-schedule", env) for n in range(BEATS)]
        for beat in beats:
            stack.callback(stop, beat)
        chaos = Chaos(args, fleet, pg, redis, lambda: holder["progress"]())
        holder["progress"] = lambda: 0.0
        chaos.start()
        say("workers and beats up; booking deployments")
        booked, elapsed, finished = drive(args, user, envs, templates, holder)
        chaos.stopping.set()
        chaos.join(timeout=120)
        dead_beats = [n + 1 for n, b in enumerate(beats) if b.poll() is not None]
    # Workers and beats stopped: the rows are final.
    figures, anomalies = retrying(check, booked, root, envs)
    if not finished:
        anomalies.insert(0, f"the run did not end within {args.timeout:.0f} s")
    if chaos.errors:
        anomalies += [f"chaos failed: {e}" for e in chaos.errors]
    wanted = {"kill": args.kills, "flush": args.flushes, "restart": args.restarts}
    for what, count in wanted.items():
        if chaos.done[what] < count:
            anomalies.append(f"chaos: only {chaos.done[what]} of {count} {what}s happened")
    if dead_beats:
        anomalies.append(f"beat(s) {dead_beats} died during the run")
    report(args, figures, anomalies, chaos, elapsed, fleet)
    return 1 if anomalies else 0


def report(args, figures, anomalies, chaos: Chaos, elapsed: float, fleet: Fleet) -> None:
    kills = Counter(
        "mid-apply"
        if k["phase"] == "forward" and k["step"] in ("apply", "equipment")
        else "mid-rollback"
        if k["phase"] == "rollback"
        else f"in {k['step']}"
        if k["step"]
        else "between steps"
        for k in chaos.kills
    )
    errors = [line.rstrip() for line in fleet.logs if " CRITICAL" in line or "Traceback" in line]
    print("\nFigures")
    print(
        f"  deployments: {sum(figures['states'].values())} of {args.deployments}: "
        + ", ".join(f"{state} {n}" for state, n in sorted(figures["states"].items()))
    )
    print(
        f"  duration:    {elapsed:.1f} s wall ({sum(figures['states'].values()) / max(elapsed, 1e-9) * 60:.1f} deployments/min)"
    )
    print(
        f"  kills:       {len(chaos.kills)} (" + ", ".join(f"{k} {n}" for k, n in sorted(kills.items())) + ")"
    )
    print(f"  flushes:     {chaos.done['flush']}")
    print(
        f"  restarts:    {chaos.done['restart']}"
        + (
            f" ({', '.join(f'{s:.1f}' for s in chaos.restart_seconds)} s each)"
            if chaos.restart_seconds
            else ""
        )
    )
    print(
        f"  journal:     {figures['interrupted']} steps marked interrupted (not repeated); attempts per deployment "
        + ", ".join(f"{a}×{n}" for a, n in sorted(figures["attempts"].items()))
    )
    print("  lateness:    " + summary(figures["lateness"], "s") + "  (scheduled start → first journal step)")
    print("  duration:    " + summary(figures["duration"], "s") + "  (started → finished)")
    print(f"  worker logs: {len(errors)} tracebacks/CRITICAL lines (kills and restarts cause some)")
    kinds = Counter(
        line.strip()[:110]
        for line in fleet.logs
        if re.match(r"^[A-Za-z_.]+(Error|Exception|Lost|Interrupt)\b", line.strip())
    )
    for text, n in kinds.most_common(6):
        print(f"    {n}× {text}")
    print(
        f"  checks:      lost {figures['lost']}, not terminal {figures['stuck']}, applied twice {figures['twice']}, "
        f"plant≠journal {figures['disagree']}, endings not audited once {figures['unaudited']}, audit chain {'valid' if figures['audit'].ok else 'INVALID'} "
        f"({figures['audit'].count} events)"
    )
    print(f"  anomalies:   {len(anomalies)}")
    for line in anomalies[:50]:
        print(f"    - {line}")
    print("PASS" if not anomalies else "FAIL")


if __name__ == "__main__":
    sys.exit(main())
