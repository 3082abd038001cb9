"""The scope and the score of the rule modules' mutation run (scripts/mutation.sh).

    .venv/bin/python scripts/mutation_report.py --globs [AREA ...]   mutmut's mutant names for the areas
    .venv/bin/python scripts/mutation_report.py [--survivors]        killed/total per module, overall rate

Run from the repository root after `mutmut run` (mutants/) and scripts/mutate_extra.py.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# area -> mutmut mutant-name globs (module.x_function__mutmut_N; methods are xǁClassǁmethod)
SCOPE: dict[str, list[str]] = {
    "calendar": ["environments.calendar.*"],
    "transitions": [
        "workflow.services.x_may_transition__mutmut_*",
        "workflow.services.x_transition__mutmut_*",
        "workflow.services.x_follow_deployment__mutmut_*",
        "deployments.states.*",
    ],
    # gate() runs when a module registers its gates, at import: mutate_extra.py mutates it there
    "gates": [
        "releases.gates.xǁGateǁas_dict__mutmut_*",
        "releases.gates.x_evaluate__mutmut_*",
        "releases.gates.x__fresh__mutmut_*",
        "releases.gates.x_failing__mutmut_*",
    ],
    "approvals": [
        f"approvals.services.x_{name}__mutmut_*"
        for name in (
            "content_hash",
            "chain_for",
            "open_round",
            "sign_verified",
            "_separation_of_duties",
            "capacity",
        )
    ],
    "engine": [
        f"deployments.engine.x_{name}__mutmut_*"
        for name in ("due_queryset", "acquire", "renew", "release", "run")
    ]
    + [
        f"deployments.engine.xǁ_Runnerǁ{name}__mutmut_*"
        for name in (
            "refresh",
            "preflight",
            "window_end",
            "window_closed",
            "step",
            "finished",
            "do_apply",
            "do_equipment",
            "do_compare",
        )
    ],
    "audit": [
        "audit.services.*",
        "audit.trail.x_heads_file__mutmut_*",
        "audit.trail.x_publish_head__mutmut_*",
        "audit.trail.x_published_heads__mutmut_*",
        "environments.permission_log.*",
    ],
}
# scripts/mutate_extra.py's files, by area
EXTRA = {
    "workflow/transitions.py": "transitions",
    "releases/gates.py": "gates",
    "approvals/gates.py": "gates",
    "audit/services.py": "audit",
    "environments/permission_log.py": "audit",
}
KILLED = {"killed", "timeout", "segfault"}


def _status(code) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def in_scope(name: str, areas) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for area in areas for glob in SCOPE[area])


def mutmut_results(areas) -> list[tuple[str, str, str]]:
    """(module path, mutant name, status) of every mutmut mutant in scope."""
    rows = []
    for meta in sorted((REPO / "mutants").rglob("*.py.meta")):
        path = str(meta.relative_to(REPO / "mutants"))[: -len(".meta")]
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if in_scope(name, areas):
                rows.append((path, name, _status(code)))
    return rows


def extra_results(areas) -> list[dict]:
    path = REPO / "mutants" / "extra-results.json"
    if not path.exists():
        return []
    return [m for m in json.loads(path.read_text()) if EXTRA.get(m["path"]) in areas]


def describe(name: str) -> str:
    """module:line and the changed line of a mutmut mutant (its diff against the source)."""
    import os

    from mutmut.__main__ import find_mutant
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        diff = get_diff_for_mutant(name, path=find_mutant(name).path).splitlines()
    finally:
        os.chdir(cwd)
    removed = [line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
    module = name.split(".x")[0].replace(".", "/") + ".py"
    source = (REPO / module).read_text().splitlines()
    line = next((i for i, text in enumerate(source, 1) if removed and text.strip() == removed[0]), "?")
    return f"{module}:{line}  {' / '.join(removed)[:90]}  =>  {' / '.join(added)[:90]}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("areas", nargs="*", help=f"default: all of {', '.join(SCOPE)}")
    parser.add_argument("--globs", action="store_true", help="print mutmut's mutant-name globs and stop")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    args = parser.parse_args()
    areas = args.areas or list(SCOPE)
    unknown = set(areas) - set(SCOPE)
    if unknown:
        parser.error(f"unknown area(s) {', '.join(sorted(unknown))}; use {', '.join(SCOPE)}")
    if args.globs:
        print("\n".join(glob for area in areas for glob in SCOPE[area]))
        return 0
    sys.path.insert(0, str(REPO))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    survivors = []
    for path, name, status in mutmut_results(areas):
        totals[path][1] += 1
        totals[path][0] += status in KILLED
        if status not in KILLED:
            survivors.append((path, name, status))
    extra = extra_results(areas)
    for m in extra:
        totals[m["path"]][1] += 1
        totals[m["path"]][0] += m["status"] in KILLED
    print(f"{'module':28} {'killed':>7} {'total':>6} {'rate':>7}")
    killed = total = 0
    for path in sorted(totals):
        k, t = totals[path]
        killed, total = killed + k, total + t
        print(f"{path:28} {k:7} {t:6} {k / t:7.1%}")
    print(f"{'overall':28} {killed:7} {total:6} {killed / total if total else 0:7.1%}")
    if args.survivors:
        print("\nSurvivors:")
        for _path, name, status in survivors:
            print(f"  [{status}] {name}\n      {describe(name)}")
        for m in extra:
            if m["status"] not in KILLED:
                print(
                    f"  [{m['status']}] {m['path']}:{m['line']} ({m['where']})  {m['before']}  =>  {m['after']}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
