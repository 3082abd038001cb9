"""The fidelity register (issue 19, seed 001: "document which external systems are real, simulated,
or partially mirrored in staging"): each environment lists its dependencies and how it has each.

Whoever may configure the environment edits it (`access.can(user, "configure", env)`); the admin
edits it inline on the environment. Every add, change and removal is audited on the environment.
Names match case-insensitively ("wms" is the register's "WMS").
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import record
from environments import access
from environments.models import Dependency, Environment


def key(name: str) -> str:
    return name.strip().casefold()


def save_dependency(
    user, env: Environment, *, name: str, kind: str, criticality: str, note: str = ""
) -> Dependency:
    """Add a dependency to the register, or change the one of that name."""
    access.require(user, "configure", env)
    name = (name or "").strip()
    with transaction.atomic():
        Environment.objects.select_for_update().get(pk=env.pk)
        current = next((d for d in env.dependencies.all() if key(d.name) == key(name)), None)
        before = current.snapshot() if current is not None else None
        dependency = current or Dependency(environment=env)
        dependency.name, dependency.kind, dependency.criticality = name, kind, criticality
        dependency.note = (note or "").strip()
        dependency.full_clean(exclude=["environment"])
        if before == dependency.snapshot():
            return dependency
        dependency.save()
        record(
            "environments.dependency.changed" if before else "environments.dependency.added",
            env,
            actor=user,
            before=before,
            after=dependency.snapshot(),
        )
    return dependency


def remove_dependency(user, env: Environment, dependency_id: int) -> None:
    access.require(user, "configure", env)
    with transaction.atomic():
        dependency = env.dependencies.select_for_update().filter(pk=dependency_id).first()
        if dependency is None:
            raise ValidationError(_("This environment lists no such dependency."))
        before = dependency.snapshot()
        dependency.delete()
        record("environments.dependency.removed", env, actor=user, before=before)
