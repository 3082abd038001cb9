"""Processes a benchmark starts and stops: Celery workers and beats, the demo plant's server, and a
private PostgreSQL cluster and Redis server of its own (bench/soak.py restarts and flushes those).
Shared by bench/engine_bench.py and bench/soak.py; statistics helpers too."""

from __future__ import annotations

import http.client
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _pump(process: subprocess.Popen, ready_mark: str | None) -> threading.Event:
    """Keep the process's output in `process.log`; the event is set when `ready_mark` is printed."""
    lines: list[str] = []
    ready = threading.Event()
    process.log = lines  # type: ignore[attr-defined]

    def pump() -> None:
        for line in process.stdout:
            lines.append(line)
            if len(lines) > 5000:
                del lines[:1000]
            if ready_mark and ready_mark in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    return ready


def start_worker(name: str, env: dict, ready_timeout: float = 60) -> subprocess.Popen:
    """A real worker subprocess, as tests/workers.py starts it (solo pool, one task at a time); returns
    once it is ready. Its output is kept in `.log`."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "changecontrol",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            f"--hostname={name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = _pump(process, " ready.")
    if not ready.wait(ready_timeout):
        stop(process)
        raise RuntimeError(f"Celery worker {name} did not start:\n" + "".join(process.log[-40:]))
    return process


@contextmanager
def celery_worker(name: str, env: dict, ready_timeout: float = 60):
    process = start_worker(name, env, ready_timeout)
    try:
        yield process
    finally:
        stop(process)


def start_beat(schedule: Path, env: dict) -> subprocess.Popen:
    """A real `celery beat` with the project's schedule, its schedule file at `schedule`."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "changecontrol",
            "beat",
            "--loglevel=INFO",
            f"--schedule={schedule}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _pump(process, None)
    return process


@contextmanager
def demo_plant_server(root: Path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "demo_plant.server", "--port", str(port), "--root", str(root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the demo plant server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        stop(process)


# --- A private PostgreSQL cluster and Redis server -------------------------------------------------
def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


class PrivatePostgres:
    """initdb into a temp dir, postgres on a free port (TCP only), trust auth; `restart()` is
    `pg_ctl restart -m fast`. As root, everything runs as the `postgres` user (initdb refuses root)."""

    def __init__(self, prefix: str):
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.as_user, *argv], capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "100",
            # A throwaway cluster: durability off makes it quick on a small machine.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self._pg_ctl("start")

    def _pg_ctl(self, *action: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                  "-l", str(self.dir / "server.log"), *action)  # fmt: skip

    def restart(self) -> float:
        """`pg_ctl restart -m fast`: every connection is cut, in-flight transactions roll back."""
        began = time.monotonic()
        self._pg_ctl("restart", "-m", "fast")
        return time.monotonic() - began

    def close(self) -> None:
        with suppress(Exception):
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """`redis-server` on a free port, no persistence: FLUSHALL here touches nobody else's data."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while self.command("PING") != "+PONG":
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def command(self, *words: str) -> str:
        """One inline command; the first line of the reply ('' when Redis cannot be reached)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall((" ".join(words) + "\r\n").encode())
                return sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]
        except OSError:
            return ""

    def flushall(self) -> None:
        if self.command("FLUSHALL") != "+OK":
            raise RuntimeError("FLUSHALL failed")

    def close(self) -> None:
        if self.process is not None:
            stop(self.process)


# --- Statistics -----------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float], unit: str, scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    if not values:
        return "no samples"
    v = [x * scale for x in values]
    return "  ".join(
        [f"count {len(v)}"]
        + [
            f"{label} {fmt.format(x)} {unit}"
            for label, x in (
                ("min", min(v)),
                ("p50", pct(v, 50)),
                ("p90", pct(v, 90)),
                ("p99", pct(v, 99)),
                ("max", max(v)),
            )
        ]
    )
