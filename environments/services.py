"""Changes to environments. Pages, the API and the admin all go through here."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.services import record
from environments import access
from environments.models import Environment

CONFIG_FIELDS = (
    "purpose",
    "data_policy",
    "access_policy",
    "sla",
    "equipment_writes",
    "windows_enforced",
    "smoke_test_minutes",
    "rollback_budget_minutes",
)


def update_environment(user, environment: Environment, changes: dict, reason: str) -> Environment:
    """Apply `changes` to an environment, audited with before/after and the reason.

    Configuration fields need the "configure" action; the active version needs "set_version"
    (in PROD only a system admin: E4). Nothing is written unless every check passes.
    """
    unknown = set(changes) - set(CONFIG_FIELDS) - {"active_version"}
    if unknown:
        raise ValidationError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not reason or not reason.strip():
        raise ValidationError({"reason": "Say why you change this environment."})
    with transaction.atomic():
        env = Environment.objects.select_for_update().select_related("site").get(pk=environment.pk)
        before = env.snapshot()
        changed = {name: value for name, value in changes.items() if getattr(env, name) != value}
        if not changed:
            return env
        if set(changed) & set(CONFIG_FIELDS):
            access.require(user, "configure", env)
        if "active_version" in changed and not access.can(user, "set_version", env):
            raise PermissionDenied(
                f"Only the automated deployment or a system admin changes the version in {env.tier} (E4)."
                if env.tier == "PROD"
                else "You may not set this version."
            )
        for name, value in changed.items():
            setattr(env, name, value)
        # The pipeline is not among what changes here: it is checked where it is written (the admin)
        # and by the "PROD pipeline complete" gate before a PROD deployment is booked or run.
        env.full_clean(exclude=["pipeline"])
        env.save(update_fields=list(changed))
        record(
            "environments.environment.updated",
            env,
            actor=user,
            before=before,
            after=env.snapshot(),
            reason=reason.strip(),
        )
    return env


def record_deployed_version(environment: Environment, version: str, deployment) -> str:
    """The engine's commit step: the environment now runs `version` (E9), audited as the system."""
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=environment.pk)
        before = env.active_version
        if before != version:
            env.active_version = version
            env.save(update_fields=["active_version"])
            record(
                "environments.environment.deployed",
                env,
                actor_name="system",
                before={"active_version": before},
                after={"active_version": version},
                reason=f"{deployment.rfc.number} deployment {deployment.uuid}",
            )
    return before
