"""Mutate the rule code that mutmut 3 leaves alone, with mutmut's own operators (scripts/mutation.sh).

mutmut 3 mutates only undecorated functions and methods: the RFC transition table
(workflow/transitions.py) and the audit trail's list of hashed fields (audit/services.py), both module
level, the registered readiness gates (@gate) and the audit signal receivers (@receiver) never
change under it, and `gate()` itself runs at import, before mutmut switches a mutant on. This script makes every one-node mutant of the gates' and receivers' bodies with
mutmut's operators (a decorator only where it says what it registers for: a gate's stages, a
receiver's sender) and, for the two tables, the slips a person makes in a table: a member dropped,
a transition's target, a role, AUTHOR/SYSTEM or a flag swapped (labels are display text and are
not mutated). Lines marked `# pragma: no mutate` are skipped.

Each mutant runs in a process forked from one that imported the project and the tests once: a
function gets the mutant's body, a table the mutant's value; a decorator mutant is imported afresh
in a scratch copy. The part's tests run there (the rule tests first): any failure kills the mutant.

    .venv/bin/python scripts/mutate_extra.py [--jobs 2] [--only workflow/transitions.py] [--survivors] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider
from mutmut.mutation.mutators import mutation_operators

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["changecontrol", "environments", "releases", "approvals", "audit", "demo_plant"]
COPY = [*PACKAGES, "tests", "templates", "static", "scripts", "manage.py", "pyproject.toml"]
TIMEOUT = 300

# file -> (top-level names to mutate, the tests that guard them)
TARGETS: dict[str, tuple[set[str], list[str]]] = {
    "workflow/transitions.py": (
        {"TRANSITIONS", "EFFECTS"},
        ["tests/workflow/test_rules_transitions.py", "tests/workflow/test_rfc_lifecycle.py"],
    ),
    "releases/gates.py": (
        {
            "gate",
            "impact_analysis",
            "rollback_plan",
            "downtime_matches_class",
            "uat_signoff",
            "artifact_checksum",
        },
        [
            "tests/releases/test_rules_gates.py",
            "tests/workflow/test_rfc_lifecycle.py::test_submit_refused_naming_the_failing_gate",
            "tests/workflow/test_rfc_lifecycle.py::test_submission_records_class_and_time",
            "tests/workflow/test_rfc_pages.py::test_submit_with_a_failing_gate_is_422_and_names_it",
            "tests/workflow/test_api_rfcs.py::test_incomplete_rfc_submit_is_422_naming_the_gate",
            "tests/reports/test_evidence_pack.py::test_json_pack_has_signatures_evidence_gates_and_audit_events",
        ],
    ),
    "approvals/gates.py": (
        {"approvals_complete"},
        ["tests/releases/test_rules_gates.py", "tests/approvals/test_approvals.py"],
    ),
    "audit/services.py": (
        {"HASHED_FIELDS"},
        [
            "tests/audit/test_rules_audit.py",
            "tests/audit/test_audit_chain.py",
            "tests/audit/test_audit_trail.py",
        ],
    ),
    "environments/permission_log.py": (
        {"granted", "revoked"},
        [
            "tests/audit/test_rules_audit.py",
            "tests/audit/test_audit_trail.py::test_object_permission_grants_are_audited",
            "tests/audit/test_audit_trail.py::test_the_object_permissions_page_asks_for_a_reason",
            "tests/environments/test_permissions.py",
        ],
    ),
}
IMPORT_TIME = {"gate"}  # runs while a module registers its gates: only a fresh import sees a mutant
TABLES = {"workflow/transitions.py", "audit/services.py"}  # module-level tables, not functions
STATES = ["DRAFT", "SUBMITTED", "IN_APPROVAL", "APPROVED", "SCHEDULED", "DEPLOYING", "DEPLOYED"]
STATES += ["ROLLED_BACK", "FAILED", "CLOSED", "REJECTED", "CANCELLED"]
BEHAVIOURAL = {"applies_from", "sender"}
ROLE_SWAP = {"RELEASE_MANAGER": "DEVELOPER", "ADMIN": "DEVELOPER", "DEVELOPER": "KEY_USER"}


@dataclass
class Mutant:
    path: str
    index: int
    line: int
    where: str
    before: str
    after: str
    decorator: bool = False
    status: str = "not checked"
    seconds: float = 0.0


def _code(node: cst.CSTNode) -> str:
    return " ".join(cst.Module([]).code_for_node(node).split())


class _Collector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self, names: set[str], skip_lines: set[int], table: bool):
        self.names, self.skip_lines, self.table = names, skip_lines, table
        self.found: list[tuple[cst.CSTNode, cst.CSTNode, int, str, bool, bool]] = []
        self._where: list[str] = []
        self._in_decorator = 0
        self._in_annotation = 0

    def _top_name(self, node) -> str | None:
        if isinstance(node, cst.FunctionDef):
            return node.name.value
        if isinstance(node, cst.SimpleStatementLine) and isinstance(node.body[0], cst.Assign | cst.AnnAssign):
            stmt = node.body[0]
            target = stmt.targets[0].target if isinstance(stmt, cst.Assign) else stmt.target
            return target.value if isinstance(target, cst.Name) else None
        return None

    def on_visit(self, node: cst.CSTNode) -> bool:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.Module):
            name = self._top_name(node)
            if name not in self.names:
                return False
            self._where.append(name)
        if isinstance(node, cst.Decorator):
            self._in_decorator += 1
        if isinstance(node, cst.Annotation):
            self._in_annotation += 1
        if self._where:
            self._mutate(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, cst.Decorator):
            self._in_decorator -= 1
        if isinstance(original_node, cst.Annotation):
            self._in_annotation -= 1
        if isinstance(self.get_metadata(ParentNodeProvider, original_node, None), cst.Module) and self._where:
            self._where.pop()

    def _mutate(self, node: cst.CSTNode) -> None:
        position = self.get_metadata(PositionProvider, node, None)
        line = position.start.line if position else 0
        ignored = self._in_annotation > 0 or line in self.skip_lines
        for kind, operator in [] if self.table else mutation_operators:
            if isinstance(node, kind):
                for mutated in operator(node):
                    if not self._in_decorator or _behavioural(node, mutated):
                        import_time = self._in_decorator > 0 or self._where[-1] in IMPORT_TIME
                        self.found.append((node, mutated, line, self._where[-1], import_time, ignored))
        if self.table:
            for mutated in _table_mutations(node):
                self.found.append((node, mutated, line, self._where[-1], False, ignored))


def _behavioural(node: cst.CSTNode, mutated: cst.CSTNode) -> bool:
    """In a decorator only what it registers for counts: a gate's stages, a receiver's sender."""
    if not isinstance(node, cst.Call):
        return not isinstance(node, cst.BaseString)
    changed = [a for a in node.args if not any(a.deep_equals(b) for b in mutated.args)]
    return bool(changed) and all(a.keyword and a.keyword.value in BEHAVIOURAL for a in changed)


def _table_mutations(node: cst.CSTNode):
    """The one-line slips a person makes in a transition table: a member too few, a wrong target or role."""
    if isinstance(node, cst.Set | cst.Tuple) and len(node.elements) > 1:
        for i in range(len(node.elements)):
            kept = [*node.elements[:i], *node.elements[i + 1 :]]
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            yield node.with_changes(elements=kept)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "Transition":
        target = node.args[2].value
        if isinstance(target, cst.Attribute) and target.attr.value in STATES:
            other = STATES[(STATES.index(target.attr.value) + 1) % len(STATES)]
            swapped = target.with_changes(attr=cst.Name(other))
            yield node.with_changes(
                args=[*node.args[:2], node.args[2].with_changes(value=swapped), *node.args[3:]]
            )
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "Role":
        other = ROLE_SWAP.get(node.attr.value)
        if other:
            yield node.with_changes(attr=cst.Name(other))
    if isinstance(node, cst.Name) and node.value in ("True", "False"):
        yield node.with_changes(value="False" if node.value == "True" else "True")
    if isinstance(node, cst.Name) and node.value in ("AUTHOR", "SYSTEM"):
        yield node.with_changes(value="SYSTEM" if node.value == "AUTHOR" else "AUTHOR")


class _Replace(cst.CSTTransformer):
    def __init__(self, old, new):
        self.old, self.new = old, new

    def on_leave(self, original_node, updated_node):
        return self.new if original_node is self.old else updated_node


def _pragma_lines(source: str) -> set[int]:
    return {i for i, text in enumerate(source.splitlines(), 1) if "# pragma: no mutate" in text}


def mutants_of(path: str) -> tuple[list[Mutant], list[str]]:
    names, _ = TARGETS[path]
    source = (REPO / path).read_text()
    wrapper = MetadataWrapper(cst.parse_module(source))
    collector = _Collector(names, _pragma_lines(source), table=path in TABLES)
    wrapper.visit(collector)
    mutants, codes = [], []
    for i, (old, new, line, where, decorator, ignored) in enumerate(collector.found, 1):
        if ignored:  # a pragma, or an annotation (postponed: never evaluated), as in mutmut; counted
            continue  # in the numbering all the same, so a pragma does not renumber the mutants
        code = wrapper.module.visit(_Replace(old, new)).code
        if code == source:
            continue
        mutants.append(Mutant(path, i, line, where, _code(old)[:160], _code(new)[:160], decorator))
        codes.append(code)
    return mutants, codes


def _swap_code(module, name: str, code: str, filename: str) -> None:
    """Give the live function `module.name` the body of its mutant (registries keep the same object)."""
    compiled = compile(code, filename, "exec")
    new = next(c for c in compiled.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
    getattr(module, name).__code__ = new


def _rebind(module, names: set[str], code: str, filename: str) -> None:
    """Run the mutant of a module of tables and put its tables where the old ones were."""
    fresh: dict = {"__name__": module.__name__, "__file__": filename}
    exec(compile(code, filename, "exec"), fresh)  # noqa: S102 - the project's own source, mutated
    for name in names:
        old, value = module.__dict__[name], fresh[name]
        if isinstance(old, dict) and isinstance(value, dict):
            old.clear()
            old.update(value)
            continue
        for other in list(sys.modules.values()):
            namespace = getattr(other, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for attr, current in list(namespace.items()):
                if current is old:
                    namespace[attr] = value


def _apply(mutant: Mutant, code: str) -> bool:
    """Make the mutant live in this (forked) process; False when only a fresh import would do."""
    import importlib

    module = importlib.import_module(mutant.path[: -len(".py")].replace("/", "."))
    filename = str(REPO / mutant.path)
    if mutant.path in TABLES:
        _rebind(module, TARGETS[mutant.path][0], code, filename)
        return True
    if mutant.decorator:
        return False
    _swap_code(module, mutant.where, code, filename)
    return True


def _child(mutant: Mutant, code: str) -> int:
    import pytest

    tests = [t for t in TARGETS[mutant.path][1] if (REPO / t.split("::")[0]).exists()]
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "scripts.mutmut_pytest", "--rootdir", str(REPO)]
    if _apply(mutant, code):
        return int(pytest.main(args + tests))
    # a decorator's argument acts at import time: a fresh interpreter imports the mutant, in a copy
    root = Path(tempfile.mkdtemp(prefix="pcc-mutate-"))
    try:
        for name in COPY:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif source.exists():
                shutil.copy2(source, root / name)
        (root / mutant.path).write_text(code)
        (root / "var").mkdir()
        args[args.index("--rootdir") + 1] = str(root)
        env = {**os.environ, "VAR_DIR": str(root / "var"), "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.run(
            [sys.executable, "-m", "pytest", *args, *tests], cwd=root, env=env, check=False, timeout=TIMEOUT
        ).returncode
    except subprocess.TimeoutExpired:
        return 36
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_all(work: list[tuple[Mutant, str]], jobs: int, report) -> None:
    """Fork one child per mutant from this warmed-up process, `jobs` at a time."""
    running: dict[int, tuple[Mutant, float]] = {}
    queue = list(work)
    # the decorator mutants rewrite a source file: one at a time, after the others
    queue.sort(key=lambda item: item[0].decorator)
    while queue or running:
        exclusive = bool(queue) and queue[0][0].decorator
        while queue and len(running) < (1 if exclusive else jobs) and not (exclusive and running):
            mutant, code = queue.pop(0)
            pid = os.fork()
            if pid == 0:
                code_ = 3
                try:
                    sys.stdout.flush()
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 1)
                    os.dup2(devnull, 2)
                    code_ = _child(mutant, code)
                finally:
                    os._exit(code_)
            running[pid] = (mutant, time.monotonic())
            exclusive = bool(queue) and queue[0][0].decorator
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for child, (_, started) in list(running.items()):
                if time.monotonic() - started > TIMEOUT:
                    os.kill(child, 9)
            time.sleep(0.05)
            continue
        mutant, started = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        mutant.status = {
            0: "survived",
            1: "killed",
            2: "killed",
            3: "killed",
            36: "timeout",
            -9: "timeout",
        }.get(code, f"error {code}")
        mutant.seconds = round(time.monotonic() - started, 1)
        report(mutant)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", action="append", choices=sorted(TARGETS))
    parser.add_argument("--without", action="append", default=[], help="test files left out (a baseline)")
    parser.add_argument(
        "--survivors", action="store_true", help="run again only the survivors recorded in --out"
    )
    parser.add_argument("--out", default=str(REPO / "mutants" / "extra-results.json"))
    args = parser.parse_args()
    work = []
    out = Path(args.out)
    recorded = json.loads(out.read_text()) if out.exists() else []
    again = {(m["path"], m["index"]) for m in recorded if m["status"] not in ("killed", "timeout")}
    for path in args.only or TARGETS:
        mutants, codes = mutants_of(path)
        work += [
            (mutant, code)
            for mutant, code in zip(mutants, codes, strict=True)
            if not args.survivors or (mutant.path, mutant.index) in again
        ]
    import django
    import pytest

    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")
    for pattern in args.without:
        hidden = {str(p.relative_to(REPO)) for p in REPO.glob(pattern)}
        for path in TARGETS:
            TARGETS[path][1][:] = [t for t in TARGETS[path][1] if t.split("::")[0] not in hidden]
    # warm up: import the project, pytest and every test module once; each child forks from here
    pytest.main(
        [
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *{t for _, tests in TARGETS.values() for t in tests if (REPO / t.split("::")[0]).exists()},
        ]
    )
    django.setup()
    results: list[Mutant] = []

    def report(mutant: Mutant) -> None:
        results.append(mutant)
        print(
            f"[{len(results)}/{len(work)}] {mutant.status:9} {mutant.path}:{mutant.line} {mutant.after}",
            flush=True,
        )

    # the control: unmutated, every part's tests pass, or no verdict below means anything
    for path in {mutant.path for mutant, _ in work}:
        pid = os.fork()
        if pid == 0:
            code_ = 3
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                import pytest as pytest_

                tests = [t for t in TARGETS[path][1] if (REPO / t.split("::")[0]).exists()]
                code_ = int(
                    pytest_.main(["-q", "-p", "no:cacheprovider", "-p", "scripts.mutmut_pytest", *tests])
                )
            finally:
                os._exit(code_)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"the tests of {path} fail without any mutation: fix them first", file=sys.stderr)
            return 1
    run_all(work, args.jobs, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(m.path, m.index) for m in results}
    if args.survivors:
        current = {(m.path, m.index) for path in args.only or TARGETS for m in mutants_of(path)[0]}
        kept = [m for m in recorded if (m["path"], m["index"]) in current - done]
    else:
        kept = [m for m in recorded if args.only and m["path"] not in args.only]
    out.write_text(json.dumps(kept + [asdict(m) for m in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
