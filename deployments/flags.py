"""Feature flags per site (issue 19 item 5; seed 001 "decouple deployment from feature exposure;
allows controlled rollout to plants").

A release declares its flags (releases/flags.py); they arrive off with the deployment. Turning one
on at an environment is a change of the standard model: pre-approved — the release that declares it
went through its chain to reach the environment — but recorded (a FlagChange row and the audit trail),
inside a deployment window unless the flag is declared safe, by a release manager or an admin, and
reversible in one step (turn it off). The switch is the pipeline's `flags` command, with ``{flag}``
and ``{state}`` ("on"/"off") in its arguments; after turning a flag on, the smoke test and the business
signals are read as after a deployment, and when one fails the flag is turned off again by itself:
a rollback that restores nothing and so loses no data.

Journal, outcome and audit texts are records: English.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from audit.services import record
from core import clock, jobs
from core.errors import StateConflict
from core.roles import Role
from deployments.models import Deployment, FlagChange, FlagChangeState
from deployments.states import IN_PROGRESS
from environments import access, calendar
from environments.models import Environment
from environments.windows import rules_for
from plant import adapters, signals
from releases.models import Release
from releases.versioning import sort_key

SWITCHERS = frozenset({Role.RELEASE_MANAGER, Role.ADMIN})
S = FlagChangeState
MINUTES = 10  # a switch and its checks fit in ten minutes of window
ADD = 'add "flags": {"adapter": "command", "command": ["…", "{flag}", "{state}"]} to its pipeline'


def may_switch(user, environment: Environment) -> bool:
    return access.has_any_role(user, SWITCHERS, environment.site)


def available(environment: Environment) -> list[dict]:
    """The flags of every product the environment runs, declared by its active release or an earlier
    one (the latest declaration wins), each with its state here: on only after a switch on succeeded."""
    versions = environment.versions
    declared: dict[str, dict] = {}
    releases = Release.objects.filter(product__in=list(versions)).exclude(flags=[]).order_by("created_at")
    for release in releases:
        if sort_key(release.version) > sort_key(versions[release.product]):
            continue  # arrives with a release this environment does not run yet
        for flag in release.flags:
            declared[flag["key"]] = {**flag, "release": release, "product": release.product}
    changes: dict[str, list[FlagChange]] = {}
    for change in FlagChange.objects.filter(environment=environment, key__in=list(declared)).select_related(
        "requested_by"
    ):
        changes.setdefault(change.key, []).append(change)  # newest first
    for key, flag in declared.items():
        history = changes.get(key, [])
        done = next((c for c in history if c.state == S.SUCCEEDED), None)
        flag["on"] = bool(done and done.on)
        flag["pending"] = next((c for c in history if c.state in (S.QUEUED, S.RUNNING)), None)
        flag["last"] = history[0] if history else None
    return sorted(declared.values(), key=lambda f: f["key"])


def _window_refusal(environment: Environment, now) -> str | None:
    """The calendar's one rule (the same `calendar.check` the scheduler and the worker ask): a switch
    needs MINUTES inside a window, clear of freezes, holidays and shift handovers."""
    decision = calendar.check(rules_for(environment), now, MINUTES)
    if decision.allowed:
        return None
    return _(
        "%(environment)s cannot be switched now (%(reasons)s): switch this flag inside a window (the "
        "calendar shows them), or declare it safe in the release if switching it cannot disturb the line."
    ) % {"environment": environment, "reasons": "; ".join(str(r) for r in decision.reasons)}


def request(user, environment: Environment, key: str, on: bool, reason: str) -> FlagChange:
    """Queue a switch of `key` at `environment`; the worker runs it (`run`)."""
    if not may_switch(user, environment):
        raise PermissionDenied(_("Release managers and admins switch feature flags."))
    reason = (reason or "").strip()
    if not reason or len(reason) > 300 or any(c in reason for c in "\x00\r\n"):
        raise ValidationError({"reason": [_("Say why, in one line of at most 300 characters.")]})
    flag = next((f for f in available(environment) if f["key"] == key), None)
    if flag is None:
        raise ValidationError(
            {
                "key": [
                    _("%(environment)s runs no release that declares the flag %(key)s.")
                    % {"environment": environment, "key": key}
                ]
            }
        )
    if flag["on"] == on:
        raise StateConflict(
            _("%(key)s is already %(state)s at %(environment)s.")
            % {"key": key, "state": _("on") if on else _("off"), "environment": environment}
        )
    if not (environment.pipeline or {}).get("flags"):
        raise ValidationError(
            {
                "key": [
                    _("%(environment)s cannot switch flags: %(add)s.")
                    % {"environment": environment, "add": ADD}
                ]
            }
        )
    now = clock.now()
    if on and not flag["safe"]:
        refused = _window_refusal(environment, now)
        if refused:
            raise ValidationError({"key": [refused]})
    with transaction.atomic():
        locked = Environment.objects.select_for_update().get(pk=environment.pk)
        if Deployment.objects.filter(environment=locked, state__in=IN_PROGRESS).exists():
            raise StateConflict(_("A deployment is running at %(environment)s.") % {"environment": locked})
        if FlagChange.objects.filter(environment=locked, key=key, state__in=[S.QUEUED, S.RUNNING]).exists():
            raise StateConflict(_("This flag is already being switched."))
        change = FlagChange.objects.create(
            environment=locked, release=flag["release"], key=key, on=on, reason=reason, requested_by=user
        )
        record(
            "deployments.flag.requested",
            change,
            actor=user,
            after={"environment": str(locked), "key": key, "on": on, "reason": reason, "safe": flag["safe"]},
        )
        jobs.nudge("deployments.tasks.run_flag_change", change.pk)
    return change


def _context(change: FlagChange) -> adapters.Context:
    env = change.environment
    return adapters.Context(
        deployment_id=0,
        rfc_number="",
        site=env.site.code,
        tier=env.tier,
        version=change.release.version,
        artifact_path="",
        artifact_sha256=change.release.artifact_sha256,
        migration_sql="",
        undo_sql="",
        equipment_writes=env.equipment_writes,
        work_dir=adapters.work_dir(change.uuid),
    )


def _switch(change: FlagChange, on: bool) -> adapters.StepResult:
    spec = dict(change.environment.pipeline["flags"])
    state = "on" if on else "off"
    spec["command"] = [
        part.replace("{flag}", change.key).replace("{state}", state) for part in spec["command"]
    ]
    spec.pop("revert_command", None)
    try:
        return adapters.build(spec).run(_context(change))
    except adapters.AdapterError as exc:
        return adapters.StepResult(False, f"configuration error: {exc}")


def _smoke(change: FlagChange) -> list[adapters.StepResult]:
    specs = (change.environment.pipeline or {}).get("smoke") or []
    results = []
    for spec in specs if isinstance(specs, list) else [specs]:
        try:
            results.append(adapters.build(spec).run(_context(change)))
        except adapters.AdapterError as exc:
            results.append(adapters.StepResult(False, f"configuration error: {exc}"))
    return results


def run(change_id: int) -> str:
    """Switch, check, and turn off again if the check fails. Safe to call twice (claimed once)."""
    change = jobs.claim(FlagChange, change_id)
    if change is None:
        return "not queued"
    change = FlagChange.objects.select_related("environment", "environment__site", "release").get(
        pk=change.pk
    )
    with translation.override(None):
        state, outcome, journal = _run(change)
    change.state, change.outcome, change.journal, change.finished_at = state, outcome, journal, clock.now()
    change.save(update_fields=["state", "outcome", "journal", "finished_at"])
    action = {
        S.SUCCEEDED: "deployments.flag.switched_on" if change.on else "deployments.flag.switched_off",
        S.ROLLED_BACK: "deployments.flag.rolled_back",
        S.FAILED: "deployments.flag.failed",
    }[state]
    record(
        action,
        change,
        actor_name="system",
        after={
            "environment": str(change.environment),
            "key": change.key,
            "on": change.on,
            "outcome": outcome,
        },
    )
    return state


def _run(change: FlagChange) -> tuple[str, str, list[dict]]:
    journal: list[dict] = []

    def note(step: str, result: adapters.StepResult) -> adapters.StepResult:
        journal.append({"step": step, "ok": result.ok, "output": result.output[-2000:]})
        return result

    env = change.environment
    word = "on" if change.on else "off"
    before = signals.baseline(env) if change.on else {}
    if not note(f"turn {word}", _switch(change, change.on)).ok:
        if change.on:
            note("turn off again", _switch(change, False))
        return S.FAILED, f"The switch of {change.key} {word} failed at {env}; see the journal.", journal
    failed = [r for r in (note("smoke test", r) for r in _smoke(change)) if not r.ok]
    breached = []
    if change.on:
        readings = signals.compare(env, before)
        for reading in readings:
            journal.append({"step": f"signal {reading.name}", "ok": reading.ok, "output": reading.text})
        breached = [r for r in readings if not r.ok]
    if not failed and not breached:
        return S.SUCCEEDED, f"{change.key} is {word} at {env}, smoke test and signals verified.", journal
    why = "; ".join(
        (["the smoke test failed"] if failed else [])
        + [f"business signal breached: {r.name} — {r.text}" for r in breached]
    )
    if not change.on:
        return S.FAILED, f"{change.key} is off at {env}, but {why}: the environment needs a look.", journal
    if note("turn off again", _switch(change, False)).ok:
        return (
            S.ROLLED_BACK,
            f"Turned {change.key} off again at {env}: {why}. Nothing was restored: no production data lost.",
            journal,
        )
    return (
        S.FAILED,
        f"{why}, and turning {change.key} off again FAILED at {env}: it needs a person now.",
        journal,
    )
