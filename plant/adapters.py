"""The outside world behind one small protocol (DESIGN principle 6).

An adapter does one thing to one system and reports a `StepResult`. Each has a real
implementation that runs on this machine: a command, an HTTP check, PostgreSQL and SQLite
backup/restore, a directory snapshot, the release's SQL migration. A VM snapshot drives a
configured hypervisor command. Steps that write to equipment run in simulation mode unless the
environment allows equipment writes (E5): the environment decides, never the caller.

An environment's `pipeline` JSON names its adapters, for example::

    {"smoke_delay_seconds": 900,
     "snapshot": {"adapter": "directory", "path": "/srv/mes/app"},
     "backup": {"adapter": "postgres", "dsn": "postgres://mes@db/mes"},
     "apply": [{"adapter": "sql", "database": "postgres://mes@db/mes"},
               {"adapter": "command", "command": ["/srv/mes/install.sh"], "timeout": 300}],
     "equipment": [{"adapter": "command", "command": ["/srv/mes/push-recipes.sh"],
                    "revert_command": ["/srv/mes/push-recipes.sh", "--previous"], "writes_equipment": true}],
     "smoke": {"adapter": "http", "url": "https://mes/line2/label", "method": "POST", "expect_status": 200,
               "expect_body": "printed", "samples": 3}}

What a pipeline may say, and what a PROD pipeline must say, is environments/pipelines.py. A command
undoes itself with its `revert_command` (`build(spec, restore=True)`); an `apply` command may declare
a `dry_run` the portal runs on an artifact when it is recorded; any adapter may carry a `name`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from django.conf import settings

from environments import pipelines
from plant.plantdb import PlantDbError, PostgresDatabase, SqliteDatabase, database_from_url

OUTPUT_LIMIT = 20_000


class AdapterError(Exception):
    """A misconfigured adapter: says which setting is wrong."""


@dataclass
class StepResult:
    ok: bool
    output: str = ""
    data: dict = field(default_factory=dict)
    simulated: bool = False


@dataclass
class Context:
    """What an adapter may know about the deployment it serves."""

    deployment_id: int
    rfc_number: str
    site: str
    tier: str
    version: str
    artifact_path: str
    artifact_sha256: str
    migration_sql: str
    undo_sql: str
    equipment_writes: bool
    work_dir: Path  # per deployment: snapshots and backups live here

    def env(self) -> dict[str, str]:
        return {
            "PCC_DEPLOYMENT": str(self.deployment_id),
            "PCC_RFC": self.rfc_number,
            "PCC_SITE": self.site,
            "PCC_TIER": self.tier,
            "PCC_RELEASE_VERSION": self.version,
            "PCC_ARTIFACT_PATH": self.artifact_path,
            "PCC_ARTIFACT_SHA256": self.artifact_sha256,
            "PCC_SIMULATION": "0" if self.equipment_writes else "1",
            "PCC_WORK_DIR": str(self.work_dir),
        }


class Adapter(Protocol):
    name: str

    def run(self, ctx: Context) -> StepResult: ...


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n… (output cut)"


# --- Command ------------------------------------------------------------------------------------
@dataclass
class CommandAdapter:
    """A configured script with the deployment's variables, a timeout and captured output."""

    command: list[str]
    timeout: int = 300
    writes_equipment: bool = False
    cwd: str | None = None
    name: str = "command"
    verify: list[str] | None = None  # a backup command's proof that what it wrote is usable

    def run(self, ctx: Context) -> StepResult:
        result = self._run(self.command, ctx)
        if not self.verify or not result.ok:
            return result
        check = self._run(self.verify, ctx)
        result.output = _clip(f"{result.output}\nverify: {check.output}")
        result.data.update({"verified": check.ok, "method": "verify command", "verify_argv": self.verify})
        if not check.ok:
            result.ok = False
            result.output += "\nthe verify command failed: the backup is not usable"
        return result

    def _run(self, command: list[str], ctx: Context) -> StepResult:
        # E5: a command that writes to equipment outside PROD still runs, told to simulate
        # (PCC_SIMULATION=1), and the journal says so.
        simulated = self.writes_equipment and not ctx.equipment_writes
        argv = list(command)  # the deployment's facts arrive as PCC_* environment variables
        try:
            done = subprocess.run(
                argv,
                env={**os.environ, **ctx.env(), **({"PCC_SIMULATION": "1"} if simulated else {})},
                cwd=self.cwd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            return StepResult(False, f"command not found: {argv[0]}")
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or "") if isinstance(exc.stdout, str) else ""
            return StepResult(
                False, _clip(out + f"\ntimed out after {self.timeout} s"), {"timeout": self.timeout}
            )
        output = _clip((done.stdout or "") + (done.stderr or ""))
        return StepResult(
            done.returncode == 0, output, {"exit_code": done.returncode, "argv": argv}, simulated=simulated
        )


# --- HTTP check ---------------------------------------------------------------------------------
@dataclass
class HttpCheckAdapter:
    """Status, body and latency (median of a few samples) of one URL (X2, X3)."""

    url: str
    method: str = "GET"
    expect_status: int = 200
    expect_body: str = ""
    timeout: float = 10.0
    samples: int = 3
    body: str = ""
    name: str = "http"

    def run(self, ctx: Context) -> StepResult:
        latencies, lines = [], []
        for n in range(max(1, self.samples)):
            request = urllib.request.Request(  # noqa: S310 - build() admits http(s) URLs only
                self.url,
                method=self.method.upper(),
                data=self.body.encode() if self.method.upper() != "GET" else None,
            )
            begin = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    status, text = response.status, response.read(4096).decode(errors="replace")
            except urllib.error.HTTPError as exc:
                status, text = exc.code, exc.read(4096).decode(errors="replace")
            except (urllib.error.URLError, OSError) as exc:
                return StepResult(
                    False,
                    "\n".join([*lines, f"{self.method} {self.url}: {exc}"]),
                    {"url": self.url, "error": str(exc)},
                )
            latency = (time.perf_counter() - begin) * 1000
            latencies.append(latency)
            lines.append(f"#{n + 1} {self.method} {self.url} → {status} in {latency:.1f} ms: {text[:200]}")
            if status != self.expect_status or (self.expect_body and self.expect_body not in text):
                want = f"{self.expect_status}" + (f" with {self.expect_body!r}" if self.expect_body else "")
                return StepResult(
                    False,
                    "\n".join([*lines, f"expected {want}"]),
                    {"url": self.url, "status": status, "latency_ms": round(latency, 1)},
                )
        median = statistics.median(latencies)
        return StepResult(
            True,
            "\n".join(lines),
            {"url": self.url, "status": self.expect_status, "latency_ms": round(median, 1)},
        )


# --- Databases (through plant.plantdb, the one place that touches a plant's database) ------
@dataclass
class SqliteBackupAdapter:
    """SQLite's online backup API into the deployment's work directory, and back."""

    database: str
    restore: bool = False
    name: str = "sqlite"

    def run(self, ctx: Context) -> StepResult:
        backup = ctx.work_dir / "backup.sqlite3"
        live, copy = SqliteDatabase(self.database), SqliteDatabase(str(backup))
        if self.restore:
            if not backup.exists():
                return StepResult(False, f"no backup at {backup} to restore")
            copy.copy_into(live)
            return StepResult(True, f"restored {self.database} from {backup}", {"backup": str(backup)})
        if not Path(self.database).exists():
            return StepResult(False, f"database {self.database} does not exist")
        size = live.copy_into(copy)
        data = {"backup": str(backup), "bytes": size, "method": SqliteDatabase.VERIFY_METHOD}
        try:  # a backup that cannot be read back is no backup: the apply must not start
            copy.verify_backup()
        except PlantDbError as exc:
            return StepResult(
                False,
                f"backup of {self.database} to {backup} is NOT usable: {exc}",
                {**data, "verified": False},
            )
        return StepResult(
            True,
            f"backed up {self.database} to {backup} ({size} bytes), verified by {data['method']}",
            {**data, "verified": True},
        )


@dataclass
class PostgresBackupAdapter:
    """pg_dump / pg_restore of the environment's database (the stand-in for a log backup)."""

    dsn: str
    restore: bool = False
    name: str = "postgres"

    def run(self, ctx: Context) -> StepResult:
        dump = ctx.work_dir / "backup.dump"
        database = PostgresDatabase(self.dsn)
        try:
            if self.restore:
                if not dump.exists():
                    return StepResult(False, f"no dump at {dump} to restore")
                database.restore_from(dump)
                return StepResult(True, f"restored from {dump}", {"dump": str(dump)})
            size = database.dump_to(dump)
        except PlantDbError as exc:
            return StepResult(False, _clip(str(exc)), {"dump": str(dump)})
        data = {"dump": str(dump), "bytes": size, "method": PostgresDatabase.VERIFY_METHOD}
        try:  # a dump pg_restore cannot read is no backup: the apply must not start
            PostgresDatabase.verify_dump(dump)
        except PlantDbError as exc:
            return StepResult(False, _clip(f"dump {dump} is NOT usable: {exc}"), {**data, "verified": False})
        return StepResult(
            True, f"dumped to {dump} ({size} bytes), verified by {data['method']}", {**data, "verified": True}
        )


@dataclass
class SqlApplyAdapter:
    """The release's SQL migration (or its undo script) in one transaction."""

    database: str  # sqlite:///path or postgres://…
    undo: bool = False
    name: str = "sql"

    def run(self, ctx: Context) -> StepResult:
        script = ctx.undo_sql if self.undo else ctx.migration_sql
        if not script.strip():
            return StepResult(True, "no SQL in this release", {"statements": 0})
        try:
            database = database_from_url(self.database)
        except PlantDbError as exc:
            raise AdapterError(str(exc)) from None
        try:
            database.run_script(script)
        except PlantDbError as exc:  # the database's own message is the useful output
            return StepResult(False, f"SQL failed, nothing kept: {exc}")
        return StepResult(
            True, f"{'undo' if self.undo else 'migration'} applied in one transaction", {"bytes": len(script)}
        )


# --- Files and machines -----------------------------------------------------------------------
@dataclass
class DirectorySnapshotAdapter:
    """A copy of the application directory, restored exactly (files added later are removed)."""

    path: str
    restore: bool = False
    name: str = "directory"

    def run(self, ctx: Context) -> StepResult:
        snapshot = ctx.work_dir / "snapshot"
        source = Path(self.path)
        if self.restore:
            if not snapshot.exists():
                return StepResult(False, f"no snapshot at {snapshot} to restore")
            staging = source.with_name(source.name + ".restoring")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(snapshot, staging)
            old = source.with_name(source.name + ".replaced")
            shutil.rmtree(old, ignore_errors=True)
            if source.exists():
                source.rename(old)
            staging.rename(source)
            shutil.rmtree(old, ignore_errors=True)
            return StepResult(True, f"restored {source} from {snapshot}", {"snapshot": str(snapshot)})
        if not source.is_dir():
            return StepResult(False, f"application directory {source} does not exist")
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(source, snapshot)
        files = sum(1 for p in snapshot.rglob("*") if p.is_file())
        return StepResult(
            True, f"snapshot of {source}: {files} files", {"snapshot": str(snapshot), "files": files}
        )


@dataclass
class VmSnapshotAdapter:
    """A hypervisor's snapshot through its CLI (virsh, govc, qm…): `{vm}` and `{snapshot}` are filled in."""

    command: list[str]
    restore_command: list[str]
    vm: str
    restore: bool = False
    timeout: int = 600
    name: str = "vm"

    def run(self, ctx: Context) -> StepResult:
        names = {"vm": self.vm, "snapshot": f"pcc-{ctx.rfc_number}-{ctx.deployment_id}"}
        argv = [part.format(**names) for part in (self.restore_command if self.restore else self.command)]
        result = CommandAdapter(argv, timeout=self.timeout).run(ctx)
        result.data.update(names)
        return result


# --- Business-transaction checks -------------------------------------------------------------------
@dataclass
class SqlCheckAdapter:
    """A smoke check in the plant's database (X2, X7): one query — e.g. one that completes a business
    transaction — whose first column of its first row must equal `expect`. Always rolled back."""

    database: str  # sqlite:///path or postgres://…
    query: str
    expect: str
    timeout: float = 10.0
    name: str = "sql_check"

    def run(self, ctx: Context) -> StepResult:
        try:
            database = database_from_url(self.database)
        except PlantDbError as exc:
            raise AdapterError(str(exc)) from None
        begin = time.perf_counter()
        try:
            row = database.first_row(self.query, self.timeout)
        except PlantDbError as exc:
            latency = round((time.perf_counter() - begin) * 1000, 1)
            return StepResult(
                False, _clip(f"{self.query!r} failed: {exc}"), {"latency_ms": latency, "row": None}
            )
        latency = round((time.perf_counter() - begin) * 1000, 1)
        got = None if row is None else ("" if row[0] is None else str(row[0]))
        shown = (
            None
            if row is None
            else [v if isinstance(v, int | float | str) or v is None else str(v) for v in row]
        )
        data = {"latency_ms": latency, "row": shown, "expect": self.expect}
        if got != self.expect:
            what = "no row" if row is None else f"{got!r} (row {shown})"
            return StepResult(False, f"{self.query!r} gave {what}, expected {self.expect!r}", data)
        return StepResult(
            True, f"{self.query!r} gave {got!r} in {latency} ms (rolled back, nothing kept)", data
        )


@dataclass
class Labelled:
    """An adapter with the label its spec gives it (`"name"`), echoed in the step's data."""

    adapter: object
    label: str

    @property
    def name(self) -> str:
        return self.adapter.name

    def __getattr__(self, attribute):
        return getattr(self.adapter, attribute)

    def run(self, ctx: Context) -> StepResult:
        result = self.adapter.run(ctx)
        result.data["name"] = self.label
        return result


# --- Building adapters from an environment's pipeline JSON ----------------------------------------
# The kinds and their keys are declared once, in environments/pipelines.py, which the model and the
# admin ask too.
KINDS = set(pipelines.KINDS)


def build(spec: dict, *, restore: bool = False):
    """One adapter from its JSON description; `restore` gives the adapter's undo direction (for a
    command: its `revert_command`). AdapterError names what is wrong with the description."""
    problems = pipelines.spec_problems(spec)
    if problems:
        raise AdapterError("; ".join(problems))
    adapter = _build(spec, spec["adapter"], restore)
    label = spec.get("name")
    return Labelled(adapter, label.strip()) if label else adapter


def _build(spec: dict, kind: str, restore: bool):
    if kind == "command":
        if restore and "revert_command" not in spec:
            raise AdapterError("the command adapter needs 'revert_command' to undo what it did")
        return CommandAdapter(
            list(spec["revert_command"] if restore else spec["command"]),
            int(spec.get("timeout", 300)),
            bool(spec.get("writes_equipment", False)),
            spec.get("cwd"),
            verify=None if restore or "verify" not in spec else list(spec["verify"]),
        )
    if kind == "http":
        return HttpCheckAdapter(
            spec["url"],
            spec.get("method", "GET"),
            int(spec.get("expect_status", 200)),
            spec.get("expect_body", ""),
            float(spec.get("timeout", 10)),
            int(spec.get("samples", 3)),
            spec.get("body", ""),
        )
    if kind == "sqlite":
        return SqliteBackupAdapter(spec["database"], restore=restore)
    if kind == "postgres":
        return PostgresBackupAdapter(spec["dsn"], restore=restore)
    if kind == "sql":
        return SqlApplyAdapter(spec["database"], undo=restore)
    if kind == "sql_check":
        return SqlCheckAdapter(
            spec["database"], spec["query"], str(spec["expect"]), float(spec.get("timeout", 10))
        )
    if kind == "directory":
        return DirectorySnapshotAdapter(spec["path"], restore=restore)
    return VmSnapshotAdapter(
        list(spec["command"]),
        list(spec["restore_command"]),
        spec["vm"],
        restore=restore,
        timeout=int(spec.get("timeout", 600)),
    )


def work_dir(deployment_uuid) -> Path:
    folder = Path(settings.VAR_DIR) / "deployments" / str(deployment_uuid)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
