"""Changes to environments. Pages, the API and the admin all go through here."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import record
from core import clock
from environments import access
from environments.models import DEFAULT_PRODUCT, Environment, ProductVersion, validate_semver

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


def _version_changes(env: Environment, changes: dict) -> dict[str, str]:
    """{product: version} asked for by `changes`: "versions" names products; "active_version" (the
    API's and the form's single version) means the environment's one product, or MES when it runs
    none yet, and is refused when it runs several (which one would it be?)."""
    wanted = {
        str(product).strip(): str(version).strip()
        for product, version in (changes.get("versions") or {}).items()
    }
    if "active_version" in changes:
        running = env.versions
        if len(running) > 1:
            raise ValidationError(
                {
                    "active_version": _(
                        "%(environment)s runs %(products)s: set each product's version (products) rather than "
                        "one active version."
                    )
                    % {"environment": env, "products": ", ".join(running)}
                }
            )
        wanted.setdefault(next(iter(running), DEFAULT_PRODUCT), str(changes["active_version"]).strip())
    for product, version in wanted.items():
        if not product or len(product) > ProductVersion._meta.get_field("product").max_length:
            raise ValidationError({"products": _("Name each product in 1–100 characters.")})
        try:
            validate_semver(version)
        except ValidationError as exc:
            field = "active_version" if "active_version" in changes else "products"
            raise ValidationError({field: f"{product}: {exc.messages[0]}"}) from None
    current = env.versions
    return {product: version for product, version in wanted.items() if current.get(product) != version}


def _set_versions(env: Environment, versions: dict[str, str]) -> None:
    now = clock.now()
    for product, version in versions.items():
        ProductVersion.objects.update_or_create(
            environment=env, product=product, defaults={"version": version, "updated_at": now}
        )


def update_environment(user, environment: Environment, changes: dict, reason: str) -> Environment:
    """Apply `changes` to an environment, audited with before/after and the reason.

    Configuration fields need the "configure" action; a product's version ("versions":
    {product: version}, or "active_version" for an environment with one product) needs
    "set_version" (in PROD only a system admin: E4). Nothing is written unless every check passes.
    """
    unknown = set(changes) - set(CONFIG_FIELDS) - {"active_version", "versions"}
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed here: %(fields)s.") % {"fields": ", ".join(sorted(unknown))}
        )
    if not reason or not reason.strip():
        raise ValidationError({"reason": _("Say why you change this environment.")})
    with transaction.atomic():
        env = Environment.objects.select_for_update().select_related("site").get(pk=environment.pk)
        before = env.snapshot()
        versions = _version_changes(env, changes)
        changed = {
            name: value
            for name, value in changes.items()
            if name in CONFIG_FIELDS and getattr(env, name) != value
        }
        if not changed and not versions:
            return env
        if changed:
            access.require(user, "configure", env)
        if versions and not access.can(user, "set_version", env):
            raise PermissionDenied(
                _("Only the automated deployment or a system admin changes the version in %(tier)s.")
                % {"tier": env.tier}
                if env.tier == "PROD"
                else _("You may not set this version.")
            )
        for name, value in changed.items():
            setattr(env, name, value)
        # The pipeline is not among what changes here: it is checked where it is written (the admin)
        # and by the "PROD pipeline complete" gate before a PROD deployment is booked or run.
        env.full_clean(exclude=["pipeline"])
        if changed:
            env.save(update_fields=list(changed))
        _set_versions(env, versions)
        env = Environment.objects.select_related("site").get(pk=env.pk)
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
    """The engine's commit step: the environment now runs `version` of the deployment's product (E9),
    audited as the system. Returns the version of that product that ran before ("" if it is new
    there); the other products the environment runs keep theirs."""
    product = deployment.rfc.release.product
    with transaction.atomic():
        env = Environment.objects.select_for_update().get(pk=environment.pk)
        row = ProductVersion.objects.filter(environment=env, product=product).first()
        before = row.version if row else ""
        if before != version:
            _set_versions(env, {product: version})
            record(
                "environments.environment.deployed",
                env,
                actor_name="system",
                before={"product": product, "version": before},
                after={"product": product, "version": version},
                reason=f"{deployment.rfc.number} deployment {deployment.uuid}",
            )
    return before
