"""What an environment's deployment `pipeline` may say, and what a PROD pipeline must say.

Pure inspection of the JSON, so the model, the admin, the scheduling gate and the adapters
(`plant.adapters.build`) all ask the same two functions:

- `spec_problems(spec)`: one adapter's description — a known kind, its required keys, their shapes;
- `pipeline_problems(pipeline, tier, vm_name)`: every step's adapters, and for PROD the steps a
  deployment cannot do without (X1 snapshot and backup, X2 smoke test, R3 an equipment push that
  can be undone, a VM snapshot when the environment runs on a named VM).

Each problem is a sentence that says what to add or change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

# Steps in the order the engine runs them, then the pipeline's own settings.
STEPS = ("vm_snapshot", "snapshot", "backup", "apply", "equipment", "smoke")
SETTINGS = ("smoke_delay_seconds", "signals", "flags", "config")
COMMON_KEYS = ("adapter", "name")  # `name`: a person's label for the check, echoed in the journal


@dataclass(frozen=True)
class Kind:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


KINDS = {
    "command": Kind(
        ("command",),
        ("timeout", "writes_equipment", "cwd", "revert_command", "verify", "dry_run", "product"),
    ),
    "http": Kind(("url",), ("method", "expect_status", "expect_body", "timeout", "samples", "body")),
    "sqlite": Kind(("database",)),
    "postgres": Kind(("dsn",)),
    "sql": Kind(("database",)),
    "directory": Kind(("path",)),
    "vm": Kind(("command", "restore_command", "vm"), ("timeout",)),
    "sql_check": Kind(("database", "query", "expect"), ("timeout",)),
}
# The adapters that make sense in each step.
STEP_KINDS = {
    "vm_snapshot": ("vm",),
    "snapshot": ("directory", "vm"),
    "backup": ("sqlite", "postgres", "command"),
    "apply": ("sql", "command"),
    "equipment": ("command",),
    "smoke": ("http", "sql_check", "command"),
}
ARGV_KEYS = ("command", "revert_command", "verify", "dry_run", "restore_command")
_DATABASE_URL = re.compile(r"^(sqlite:///.+|postgres(ql)?://.+)$")

ADD = {
    "snapshot": 'add "snapshot": {"adapter": "directory", "path": "<application directory>"} or '
    '"vm_snapshot": {"adapter": "vm", "vm": "<name>", "command": [...], "restore_command": [...]}',
    "backup": 'add "backup": {"adapter": "sqlite", "database": "<path>"} or {"adapter": "postgres", '
    '"dsn": "postgres://…"} (or a "command" with "verify" and "revert_command")',
    "smoke": 'add "smoke": {"adapter": "http", "url": "…", "expect_status": 200} or {"adapter": '
    '"sql_check", "database": "…", "query": "SELECT …", "expect": "…"}',
}


def _is_argv(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(part, str) and part for part in value)


def spec_problems(spec) -> list[str]:
    """What is wrong with one adapter's description (empty: `plant.adapters.build` can build it)."""
    kinds = ", ".join(sorted(KINDS))
    if not isinstance(spec, dict):
        return [
            _('an adapter is a JSON object such as {"adapter": "command", …}, not %(spec)s')
            % {"spec": repr(spec)}
        ]
    kind = spec.get("adapter")
    if kind not in KINDS:
        return [_("unknown adapter %(kind)s; use one of %(kinds)s") % {"kind": repr(kind), "kinds": kinds}]
    allowed = KINDS[kind]
    problems = [
        _("the %(kind)s adapter needs %(key)s") % {"kind": kind, "key": repr(key)}
        for key in allowed.required
        if key not in spec
    ]
    unknown = sorted(set(spec) - set(allowed.required) - set(allowed.optional) - set(COMMON_KEYS))
    if unknown:
        known = ", ".join(allowed.required + allowed.optional + ("name",))
        problems.append(
            _("the %(kind)s adapter does not know %(unknown)s; it takes %(known)s")
            % {"kind": kind, "unknown": ", ".join(map(repr, unknown)), "known": known}
        )
    for key in ARGV_KEYS:
        if key in spec and not _is_argv(spec[key]):
            problems.append(
                _('%(kind)s %(key)s is a list of program and arguments, e.g. ["/srv/mes/x.sh"]')
                % {"kind": kind, "key": repr(key)}
            )
    if "timeout" in spec and (
        isinstance(spec["timeout"], bool)
        or not isinstance(spec["timeout"], int | float)
        or spec["timeout"] <= 0
    ):
        problems.append(_("%(kind)s 'timeout' is a number of seconds above 0") % {"kind": kind})
    if "name" in spec and not (isinstance(spec["name"], str) and spec["name"].strip()):
        problems.append(_("%(kind)s 'name' is a label such as \"print one label\"") % {"kind": kind})
    if kind == "http" and "url" in spec and not str(spec["url"]).startswith(("http://", "https://")):
        problems.append(_("the http adapter takes an http:// or https:// URL"))
    if kind in ("sql", "sql_check") and "database" in spec and not _DATABASE_URL.match(str(spec["database"])):
        problems.append(
            _("the %(kind)s adapter's database is sqlite:///path or postgres://…") % {"kind": kind}
        )
    if kind == "sql_check" and "query" in spec and not str(spec["query"]).strip():
        problems.append(_("the sql_check adapter's query is empty"))
    for key in ("database", "dsn", "path", "vm", "product"):
        if (
            key in spec
            and kind not in ("sql", "sql_check")
            and not (isinstance(spec[key], str) and spec[key].strip())
        ):
            problems.append(_("%(kind)s %(key)s is a non-empty text") % {"kind": kind, "key": repr(key)})
    return problems


# --- Business signals (read as PROD readiness, compared with their baseline after the apply) ------
SIGNAL_KINDS = {
    "sql": Kind(("database", "query"), ("timeout",)),
    "http": Kind(("url", "field"), ("timeout",)),
    "terminals": Kind((), ("within_minutes", "product")),
}
SIGNAL_KEYS = ("name", "good", "tolerance", "allowance", "min", "max", "window_seconds")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def signal_problems(spec) -> list[str]:
    """What is wrong with one business signal: a number read from the plant (one SQL query's first
    column, or one field of an HTTP probe's JSON), or the count of terminals not on the version."""
    if not isinstance(spec, dict):
        return [
            _('a signal is a JSON object such as {"adapter": "sql", "name": …}, not %(spec)s')
            % {"spec": repr(spec)}
        ]
    kind = spec.get("adapter")
    if kind not in SIGNAL_KINDS:
        return [
            _("unknown signal adapter %(kind)s; use one of %(kinds)s")
            % {"kind": repr(kind), "kinds": ", ".join(SIGNAL_KINDS)}
        ]
    allowed = SIGNAL_KINDS[kind]
    problems = [
        _("the %(kind)s signal needs %(key)s") % {"kind": kind, "key": repr(key)}
        for key in ("name", *allowed.required)
        if key not in spec
    ]
    unknown = sorted(set(spec) - {"adapter", *SIGNAL_KEYS, *allowed.required, *allowed.optional})
    if unknown:
        problems.append(
            _("the %(kind)s signal does not know %(unknown)s")
            % {"kind": kind, "unknown": ", ".join(map(repr, unknown))}
        )
    if "name" in spec and not (isinstance(spec["name"], str) and spec["name"].strip()):
        problems.append(_('a signal\'s "name" is a label such as "Orders per minute"'))
    if "good" in spec and spec["good"] not in ("higher", "lower"):
        problems.append(_('"good" is "higher" or "lower": which way the signal gets better'))
    for key in ("tolerance", "allowance"):
        if key in spec and not (_number(spec[key]) and spec[key] >= 0):
            problems.append(_("%(key)s is a number, 0 or more") % {"key": repr(key)})
    for key in ("min", "max"):
        if key in spec and not _number(spec[key]):
            problems.append(_("%(key)s is a number") % {"key": repr(key)})
    window = spec.get("window_seconds", 900)
    if isinstance(window, bool) or not isinstance(window, int) or not 60 <= window <= 86400:
        problems.append(_('"window_seconds" is a whole number of seconds from 60 to 86400'))
    within = spec.get("within_minutes", 30)
    if isinstance(within, bool) or not isinstance(within, int) or not 0 <= within <= 1440:
        problems.append(_('"within_minutes" is a whole number of minutes from 0 to 1440'))
    if kind == "http" and "url" in spec and not str(spec["url"]).startswith(("http://", "https://")):
        problems.append(_("the http signal takes an http:// or https:// URL"))
    if kind == "http" and "field" in spec and not (isinstance(spec["field"], str) and spec["field"].strip()):
        problems.append(_('"field" names the number in the JSON answer, e.g. "queue.depth"'))
    if kind == "sql" and "database" in spec and not _DATABASE_URL.match(str(spec["database"])):
        problems.append(_("the sql signal's database is sqlite:///path or postgres://…"))
    if kind == "sql" and "query" in spec and not (isinstance(spec["query"], str) and spec["query"].strip()):
        problems.append(_("the sql signal's query is empty"))
    if kind != "terminals" and not {"good", "min", "max"} & set(spec):
        problems.append(
            _(
                'say how to judge it: "good": "higher" or "lower" (compared with the baseline after the apply), '
                'or "min"/"max" (read as readiness before PROD)'
            )
        )
    return problems


def config_problems(spec) -> list[str]:
    """Where the environment's configuration lives: a folder of one JSON file per bundle."""
    if (
        not isinstance(spec, dict)
        or spec.get("adapter") != "config_dir"
        or set(spec) - {"adapter", "path", "name"}
        or not isinstance(spec.get("path"), str)
        or not spec["path"].strip()
    ):
        return [
            _('configuration lives in a folder of JSON files: {"adapter": "config_dir", "path": "<folder>"}')
        ]
    return []


def flag_switch_problems(spec) -> list[str]:
    """The command that switches a feature flag: a command adapter whose arguments hold {flag} and {state}."""
    if not isinstance(spec, dict) or spec.get("adapter") != "command":
        return [
            _(
                'the flag switch is a command adapter: {"adapter": "command", "command": ["…", "{flag}", "{state}"]}'
            )
        ]
    problems = spec_problems(spec)
    if not problems and not all(
        any(mark in part for part in spec["command"]) for mark in ("{flag}", "{state}")
    ):
        problems.append(
            _('its command takes the flag as "{flag}" and on/off as "{state}" among its arguments')
        )
    return problems


def _specs(value) -> list:
    if value in (None, {}, []):
        return []
    return value if isinstance(value, list) else [value]


def pipeline_problems(pipeline, tier: str, vm_name: str = "") -> list[str]:
    """Everything wrong with an environment's pipeline; for PROD, also every step it lacks.
    DEV and UAT pipelines may leave steps out; an empty PROD pipeline lacks them all."""
    if pipeline in (None, ""):
        pipeline = {}
    if not isinstance(pipeline, dict):
        return [_("The pipeline is a JSON object of steps (snapshot, backup, apply, equipment, smoke).")]
    problems = []
    unknown = sorted(set(pipeline) - set(STEPS) - set(SETTINGS) - set(EVIDENCE))
    if unknown:
        problems.append(
            _("Unknown pipeline key(s) %(keys)s; the steps are %(steps)s and the setting %(settings)s.")
            % {
                "keys": ", ".join(map(repr, unknown)),
                "steps": ", ".join(STEPS),
                "settings": ", ".join(SETTINGS),
            }
        )
    for index, spec in enumerate(_specs(pipeline.get("signals"))):
        problems += [
            _("signals #%(n)d: %(problem)s.") % {"n": index + 1, "problem": found}
            for found in signal_problems(spec)
        ]
    if pipeline.get("config") not in (None, {}):
        problems += [
            _("config: %(problem)s.") % {"problem": found} for found in config_problems(pipeline["config"])
        ]
    if pipeline.get("flags") not in (None, {}):
        problems += [
            _("flags: %(problem)s.") % {"problem": found} for found in flag_switch_problems(pipeline["flags"])
        ]
    delay = pipeline.get("smoke_delay_seconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        problems.append(_("smoke_delay_seconds is a whole number of seconds, 0 or more."))
    for step in STEPS:
        if step in pipeline and not isinstance(pipeline[step], dict | list):
            problems.append(_("%(step)s: an adapter (a JSON object) or a list of them.") % {"step": step})
            continue
        for spec in _specs(pipeline.get(step)):
            found = spec_problems(spec)
            if not found and spec["adapter"] not in STEP_KINDS[step]:
                or_word = pgettext("one of these adapters", "or")
                found = [
                    _("a %(adapter)s adapter cannot be the %(step)s step; use %(kinds)s")
                    % {
                        "adapter": spec["adapter"],
                        "step": step,
                        "kinds": f" {or_word} ".join(STEP_KINDS[step]),
                    }
                ]
            if not found and step == "backup" and spec["adapter"] == "command":
                found = [
                    _("a command backup needs %(key)s (%(why)s)") % {"key": repr(key), "why": why}
                    for key, why in (
                        ("verify", _("a command that proves the backup is usable, run right after it")),
                        ("revert_command", _("the command that restores it")),
                    )
                    if key not in spec
                ]
            problems += [f"{step}: {text}." for text in found]
    problems += evidence_problems(pipeline)
    if tier != "PROD":
        return problems
    present = {step for step in STEPS if _specs(pipeline.get(step))}
    if not present & {"snapshot", "vm_snapshot"}:
        problems.append(
            _("A PROD pipeline takes a snapshot before the apply: %(add)s.") % {"add": ADD["snapshot"]}
        )
    if "backup" not in present:
        problems.append(
            _("A PROD pipeline backs up the database before the apply: %(add)s.") % {"add": ADD["backup"]}
        )
    if "smoke" not in present:
        problems.append(
            _("A PROD pipeline runs a smoke test after the apply: %(add)s.") % {"add": ADD["smoke"]}
        )
    if vm_name:
        vms = [s.get("vm") for s in _specs(pipeline.get("vm_snapshot")) if isinstance(s, dict)]
        if not vms:
            problems.append(
                _("This environment runs on the virtual machine %(vm)s: add %(add)s.")
                % {
                    "vm": repr(vm_name),
                    "add": f'"vm_snapshot": {{"adapter": "vm", "vm": "{vm_name}", "command": [...], '
                    '"restore_command": [...]}',
                }
            )
        elif vm_name not in vms:
            problems.append(
                _("vm_snapshot snapshots %(vms)s, but this environment runs on %(vm)s.")
                % {"vms": ", ".join(map(repr, vms)), "vm": repr(vm_name)}
            )
    for spec in _specs(pipeline.get("equipment")):
        if isinstance(spec, dict) and spec.get("adapter") == "command" and "revert_command" not in spec:
            what = spec.get("name") or " ".join(spec.get("command") or ["?"])[:80]
            problems.append(
                _(
                    'equipment: %(what)s has no "revert_command": the rollback must push the previous recipe '
                    'back; add "revert_command": [...].'
                )
                % {"what": repr(what)}
            )
    return problems


# --- Replay and parallel runs: computed evidence on scratch copies, not deployment steps ----------------
EVIDENCE = ("replay", "parallel")
ADD_EVIDENCE = {
    "replay": '"replay": {"messages": "SELECT key, interface, payload FROM <recorded messages>", '
    '"query": "<SQL run per message, with :key, :interface, :payload>", '
    '"output": "SELECT … WHERE … = :key"}',
    "parallel": '"parallel": [{"name": "Daily output by line", "query": "SELECT line, sum(good_parts) '
    'FROM cycles GROUP BY line"}]',
}
REPLAY_KEYS = ("messages", "query", "output")


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def evidence_problems(pipeline) -> list[str]:
    """What is wrong with the pipeline's `replay` (recorded messages replayed before and after the
    migration) and `parallel` (named queries compared before and after); empty when both are absent."""
    problems = []
    replay = pipeline.get("replay")
    if replay is not None:
        if not isinstance(replay, dict):
            replay = {}
        missing = [key for key in REPLAY_KEYS if key not in replay]
        unknown = sorted(set(replay) - set(REPLAY_KEYS) - {"name"})
        statements = replay.get("query")
        bad = [
            key
            for key in REPLAY_KEYS
            if key in replay
            and not (
                _text(replay[key])
                or (
                    key == "query"
                    and isinstance(statements, list)
                    and statements
                    and all(map(_text, statements))
                )
            )
        ]
        if missing or unknown or bad:
            problems.append(
                _("replay: %(problem)s; write %(add)s.")
                % {
                    "problem": "; ".join(
                        [_("it needs %(key)s") % {"key": repr(key)} for key in missing]
                        + [_("it does not know %(key)s") % {"key": repr(key)} for key in unknown]
                        + [_("%(key)s is SQL text, not empty") % {"key": repr(key)} for key in bad]
                    ),
                    "add": ADD_EVIDENCE["replay"],
                }
            )
    parallel = pipeline.get("parallel")
    if parallel is not None:
        names = [q.get("name") for q in parallel if isinstance(q, dict)] if isinstance(parallel, list) else []
        if (
            not isinstance(parallel, list)
            or not parallel
            or any(not isinstance(q, dict) or set(q) != {"name", "query"} for q in parallel)
            or not all(_text(q["name"]) and _text(q["query"]) for q in parallel)
        ):
            problems.append(
                _("parallel: a list of named queries, each with only a 'name' and a 'query'; write %(add)s.")
                % {"add": ADD_EVIDENCE["parallel"]}
            )
        elif len(set(names)) != len(names):
            problems.append(_("parallel: each query has a name of its own."))
    return problems
