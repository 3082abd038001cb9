"""pcc — file an RFC, upload evidence, ask whether a change may deploy, wait for a deployment.

Configuration: --url / PCC_URL (the portal's address) and --token / PCC_TOKEN (an API token, made on
the portal's "API tokens" page). Exit codes:

  0  done; the gates pass; the deployment succeeded
  1  a gate fails; the deployment (or the RFC's) ended rolled back, failed, cancelled or missed
  2  usage, connection or API error (the message says which)
  3  `wait` timed out
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import requests

OK, FAILED, ERROR, TIMEOUT = 0, 1, 2, 3
DEPLOYMENT_END = {"succeeded": OK, "rolled_back": FAILED, "rollback_failed": FAILED, "failed": FAILED}
DEPLOYMENT_END |= {"cancelled": FAILED, "missed": FAILED}
RFC_END = {"deployed": OK, "closed": OK, "rolled_back": FAILED, "failed": FAILED, "cancelled": FAILED}
RFC_END |= {"rejected": FAILED}


class Problem(Exception):
    """An expected failure, told in one line (exit 2)."""


class Api:
    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        if not url:
            raise Problem("No portal address: pass --url or set PCC_URL.")
        if not token:
            raise Problem(
                "No API token: pass --token or set PCC_TOKEN (make one on the portal's API tokens page)."
            )
        self.base = url.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})
        self.timeout = timeout

    def call(self, method: str, path: str, **kwargs):
        try:
            response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise Problem(f"Cannot reach the portal at {self.base}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise Problem(f"{method} {path}: HTTP {response.status_code}: {_said(response)}")
        return response.json() if response.content else None


def _said(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message")
        fields = {k: v for k, v in body.items() if k not in {"detail", "message", "status", "code", "type"}}
        parts = [str(detail)] if detail else []
        parts += [f"{k}: {' '.join(v) if isinstance(v, list) else v}" for k, v in fields.items()]
        return "; ".join(parts)[:1000] or str(body)[:300]
    return str(body)[:300]


def _out(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text)


# --- Commands ------------------------------------------------------------------------------------
def rfc_create(api: Api, args) -> int:
    body = {
        "title": args.title,
        "description": args.description,
        "release": args.release,
        "rollback_plan": args.rollback_plan,
        "impacts": [
            {"site": site, "lines": args.line or [], "modules": args.module or []} for site in args.site
        ],
    }
    if args.downtime is not None:
        body["estimated_downtime_minutes"] = args.downtime
    rfc = api.call("POST", "/rfcs/", json=body)
    _out(args, rfc, rfc["number"])
    return OK


def evidence_upload(api: Api, args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise Problem(f"No such file: {path}")
    with path.open("rb") as handle:
        evidence = api.call(
            "POST",
            f"/rfcs/{args.rfc}/evidence/",
            data={"kind": args.kind, "description": args.description or ""},
            files={"file": (path.name, handle)},
        )
    _out(args, evidence, f"{evidence.get('sha256', '')}  {path.name}")
    return OK


def may_deploy(api: Api, args) -> int:
    gates = api.call("GET", f"/rfcs/{args.rfc}/gates/", params={"stage": args.stage})
    failing = [g for g in gates if not g["passed"]]
    if args.json:
        _out(args, {"ok": not failing, "gates": gates}, "")
    else:
        for gate in gates:
            mark = "PASS" if gate["passed"] else "FAIL"
            print(f"{mark}  {gate['name']}: {gate['reason']}{' (waived)' if gate.get('waived') else ''}")
        print(
            f"{args.rfc}: {'may go ahead' if not failing else f'{len(failing)} gate(s) fail'} ({args.stage})."
        )
    return FAILED if failing else OK


def wait(api: Api, args) -> int:
    is_rfc = args.target.upper().startswith("RFC-")
    path = f"/rfcs/{args.target}/" if is_rfc else f"/deployments/{args.target}/"
    ends = RFC_END if is_rfc else DEPLOYMENT_END
    deadline = time.monotonic() + args.timeout
    while True:
        state = api.call("GET", path)["state"]
        if state in ends:
            print(f"{args.target}: {state}")
            return ends[state]
        if time.monotonic() >= deadline:
            print(f"{args.target}: still {state} after {args.timeout:g} s", file=sys.stderr)
            return TIMEOUT
        time.sleep(min(args.interval, max(deadline - time.monotonic(), 0)))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pcc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    top.add_argument("--url", default=os.environ.get("PCC_URL", ""), help="the portal (PCC_URL)")
    top.add_argument("--token", default=os.environ.get("PCC_TOKEN", ""), help="an API token (PCC_TOKEN)")
    top.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    commands = top.add_subparsers(dest="command", required=True)

    rfc = commands.add_parser("rfc", help="RFCs").add_subparsers(dest="action", required=True)
    create = rfc.add_parser("create", help="file an RFC (a draft); prints its number")
    create.add_argument("--release", required=True, help="the release's UUID")
    create.add_argument("--title", required=True)
    create.add_argument("--description", required=True)
    create.add_argument("--site", required=True, action="append", help="a target site code (repeatable)")
    create.add_argument("--line", action="append", help="an affected production line (repeatable)")
    create.add_argument("--module", action="append", help="an affected module (repeatable)")
    create.add_argument("--rollback-plan", required=True)
    create.add_argument("--downtime", type=int, help="estimated downtime in minutes")
    create.set_defaults(run=rfc_create)

    evidence = commands.add_parser("evidence", help="evidence").add_subparsers(dest="action", required=True)
    upload = evidence.add_parser("upload", help="attach a file to an RFC")
    upload.add_argument("rfc", help="RFC number or UUID")
    upload.add_argument("file")
    upload.add_argument("--kind", required=True, choices=["screenshot", "log", "test_report", "signoff"])
    upload.add_argument("--description")
    upload.set_defaults(run=evidence_upload)

    may = commands.add_parser("may-deploy", help="do the gates pass? exit 0 yes, 1 no")
    may.add_argument("rfc", help="RFC number or UUID")
    may.add_argument("--stage", default="deploy", choices=["submit", "schedule", "deploy"])
    may.set_defaults(run=may_deploy)

    waiting = commands.add_parser("wait", help="wait for a deployment (UUID) or an RFC's outcome")
    waiting.add_argument("target", help="deployment UUID or RFC number")
    waiting.add_argument("--timeout", type=float, default=3600, help="seconds (default 3600)")
    waiting.add_argument("--interval", type=float, default=10, help="seconds between looks (default 10)")
    waiting.set_defaults(run=wait)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(Api(args.url, args.token), args)
    except Problem as problem:
        print(f"pcc: {problem}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        return ERROR
