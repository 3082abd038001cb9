"""The demo plant's MES: one HTTP process for every environment under a root directory.

    python -m demo_plant.server --port 8100 --root var/plant

Routes, for each ``<SITE>/<TIER>`` that exists under the root (404 JSON otherwise):
``GET /<SITE>/<TIER>/health``, ``POST /<SITE>/<TIER>/label``, ``POST /<SITE>/<TIER>/cycle``,
``GET /<SITE>/<TIER>/signals?window=SECONDS`` (the business indicators the portal's signals read),
and ``GET /`` lists the environments. Every label and cycle is confirmed to the ERP (a row in
``confirmations``); a release with ``"confirmations_broken": true`` prints and counts as usual but
its confirmations fail — the smoke test passes, the signals do not. ``app/release.json`` is read on every request. With
``--produce-every N`` each PROD line writes a production cycle every N seconds.
"""

from __future__ import annotations

import argparse
import html
import json
import signal
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from demo_plant.flags import read_flags
from demo_plant.layout import NAME, connect, default_root, validate_release


class ReleaseError(Exception):
    pass


def read_release(env_dir: Path) -> dict:
    """The installed release, with its feature flags: batch confirmations (a flag) fail like a release
    whose confirmations are broken."""
    try:
        data = json.loads((env_dir / "app" / "release.json").read_text(encoding="utf-8"))
        release = validate_release(data)
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ReleaseError(f"release.json unreadable: {exc}") from exc
    if read_flags(env_dir / "app").get("erp_batch_confirmations"):
        release["confirmations_broken"] = True
    return release


def environments(root: Path) -> list[tuple[str, str, Path]]:
    found = []
    for env_dir in sorted(root.glob("*/*")):
        if (env_dir / "app").is_dir() and NAME.match(env_dir.name) and NAME.match(env_dir.parent.name):
            found.append((env_dir.parent.name, env_dir.name, env_dir))
    return found


def insert(env_dir: Path, sql: str, params: tuple, confirm: str = "", failed: bool = False) -> int:
    """Insert one row; with `confirm` (its source, "label" or "cycle") also its ERP confirmation, in the
    same transaction — failed when the installed release cannot confirm."""
    conn = connect(env_dir)
    try:
        with conn:  # commits, or rolls back on error
            row = conn.execute(sql, params).lastrowid
            if confirm:
                conn.execute(
                    "INSERT INTO confirmations (source, ref, sent_at, status) VALUES (?, ?, ?, ?)",
                    (confirm, row, now(), "failed" if failed else "sent"),
                )
            return row
    finally:
        conn.close()


def signals(env_dir: Path, window: int) -> dict:
    """The business indicators over the last `window` seconds (seed 001: order throughput, production
    confirmation timing, integration errors, queue depth)."""
    since = datetime.fromtimestamp(time.time() - window, UTC).isoformat(timespec="milliseconds")
    conn = connect(env_dir)
    try:
        cycles = conn.execute("SELECT count(*) FROM cycles WHERE completed_at >= ?", (since,)).fetchone()[0]
        labels = conn.execute("SELECT count(*) FROM labels WHERE printed_at >= ?", (since,)).fetchone()[0]
        sent, failed = conn.execute(
            "SELECT coalesce(sum(status = 'sent'), 0), coalesce(sum(status = 'failed'), 0) "
            "FROM confirmations WHERE sent_at >= ?",
            (since,),
        ).fetchone()
        queue, oldest = conn.execute(
            "SELECT count(*), min(sent_at) FROM confirmations WHERE status = 'failed'"
        ).fetchone()
    finally:
        conn.close()
    age = (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0
    return {
        "window_seconds": window,
        "cycles_per_minute": round(cycles * 60 / window, 3),
        "labels_per_minute": round(labels * 60 / window, 3),
        "confirmations_sent": sent,
        "confirmations_failed": failed,
        "integration_errors": failed,
        "queue_depth": queue,
        "oldest_unconfirmed_seconds": round(age, 1),
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Handler(BaseHTTPRequestHandler):
    server_version = "DemoMES/1"
    root: Path  # set by make_server

    def log_message(self, format, *args):
        sys.stderr.write(f"demo_plant {self.address_string()} {format % args}\n")

    def send_json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def find_env(self) -> tuple[str, str, str, Path] | None:
        """``/<SITE>/<TIER>/<action>`` → (site, tier, action, env_dir), or None when no such environment."""
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 3 or not NAME.match(parts[0]) or not NAME.match(parts[1]):
            return None
        site, tier, action = parts
        env_dir = self.root / site / tier
        return (site, tier, action, env_dir) if (env_dir / "app").is_dir() else None

    def read_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/":
            return self.index()
        found = self.find_env()
        if found is None or found[2] not in ("health", "signals"):
            return self.send_json(404, {"error": "no such environment or route"})
        site, tier, action, env_dir = found
        if action == "signals":
            return self.send_signals(env_dir)
        try:
            release = read_release(env_dir)
        except ReleaseError as exc:
            return self.send_json(500, {"status": "error", "error": str(exc), "site": site, "tier": tier})
        self.send_json(200, {"status": "ok", "version": release["version"], "site": site, "tier": tier})

    def send_signals(self, env_dir: Path) -> None:
        query = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
        try:
            window = int(query.get("window", ["900"])[0])
            if not 1 <= window <= 86400:
                raise ValueError
        except ValueError:
            return self.send_json(400, {"error": "window is a whole number of seconds from 1 to 86400"})
        try:
            return self.send_json(200, signals(env_dir, window))
        except sqlite3.Error as exc:
            return self.send_json(500, {"error": f"database error: {exc}"})

    def do_POST(self):
        found = self.find_env()
        if found is None or found[2] not in ("label", "cycle"):
            return self.send_json(404, {"error": "no such environment or route"})
        site, tier, action, env_dir = found
        try:
            body = self.read_body()
            line = str(body.get("line") or "Line 1")[:60]
        except ValueError as exc:
            return self.send_json(400, {"error": f"bad request body: {exc}"})
        try:
            release = read_release(env_dir)
        except ReleaseError as exc:
            return self.send_json(500, {"error": str(exc)})
        try:
            if action == "label":
                return self.print_label(env_dir, site, tier, line, release)
            return self.complete_cycle(env_dir, line, release)
        except sqlite3.Error as exc:
            return self.send_json(500, {"error": f"database error: {exc}"})

    def print_label(self, env_dir: Path, site: str, tier: str, line: str, release: dict) -> None:
        time.sleep(release["label_delay_ms"] / 1000)
        if release["broken"]:
            return self.send_json(500, {"printed": False, "error": "label template missing"})
        text = f"{site}/{tier} {line} v{release['version']}"
        n = insert(
            env_dir,
            "INSERT INTO labels (line, printed_at, text) VALUES (?, ?, ?)",
            (line, now(), text),
            confirm="label",
            failed=release.get("confirmations_broken", False),
        )
        self.send_json(200, {"printed": True, "label": n, "version": release["version"]})

    def complete_cycle(self, env_dir: Path, line: str, release: dict) -> None:
        if release["broken"]:
            return self.send_json(500, {"error": "cycle failed: release is broken"})
        n = insert(
            env_dir,
            "INSERT INTO cycles (line, completed_at, good_parts) VALUES (?, ?, 100)",
            (line, now()),
            confirm="cycle",
            failed=release.get("confirmations_broken", False),
        )
        self.send_json(200, {"cycle": n, "good_parts": 100, "version": release["version"]})

    def index(self) -> None:
        rows = []
        for site, tier, env_dir in environments(self.root):
            try:
                version = read_release(env_dir)["version"]
            except ReleaseError:
                version = "release.json unreadable"
            rows.append(
                f"<tr><td>{html.escape(site)}</td><td>{html.escape(tier)}</td>"
                f"<td>{html.escape(version)}</td></tr>"
            )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Demo plant MES</title></head>"
            "<body><h1>Demo plant MES</h1><table><tr><th>Site</th><th>Tier</th><th>Version</th></tr>"
            + "".join(rows)
            + "</table></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


def produce(root: Path, every: float, stop: threading.Event) -> None:
    """The lines keep running: every `every` seconds each PROD environment's line completes a cycle,
    written to its database whatever release is installed (the PLC writes, not the MES screens). A
    rollback that restores a backup loses these rows; one that runs the undo script keeps them."""
    while not stop.wait(every):
        for _site, tier, env_dir in environments(root):
            if tier != "PROD":
                continue
            try:
                try:
                    unconfirmed = read_release(env_dir).get("confirmations_broken", False)
                except ReleaseError:
                    unconfirmed = True  # no readable MES: nothing confirms the cycle
                insert(
                    env_dir,
                    "INSERT INTO cycles (line, completed_at, good_parts) VALUES (?, ?, ?)",
                    ("Line 1", now(), 100),
                    confirm="cycle",
                    failed=unconfirmed,
                )
            except sqlite3.Error as exc:  # a locked database during a restore: the next cycle writes
                sys.stderr.write(f"demo_plant: cycle not written to {env_dir}: {exc}\n")


def make_server(root: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"root": Path(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the demo plant's MES environments.")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--root", type=Path, default=default_root())
    parser.add_argument(
        "--produce-every",
        type=float,
        default=0,
        help="seconds between production cycles written to each PROD database (0: none)",
    )
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    server = make_server(args.root, args.port, args.host)
    stop = threading.Event()
    if args.produce_every > 0:
        threading.Thread(target=produce, args=(args.root, args.produce_every, stop), daemon=True).start()

    # honcho and test harnesses stop us with SIGTERM: shut down as cleanly as on Ctrl-C. SIGINT is
    # set explicitly because a shell starts background jobs with it ignored.
    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"demo_plant: serving {args.root.resolve()} on http://{args.host}:{args.port}/",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("demo_plant: stopped", file=sys.stderr)
    finally:
        stop.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
