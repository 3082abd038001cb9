"""UAT refresh from PROD with masking, and drift between tiers (E3, E6, E8, C4).

A refresh is a row (queued → running → passed | failed) that a worker runs; the data is copied
into a scratch copy, masked there, and only then copied into UAT, so UAT never holds an unmasked
value. Only downwards: never from a lower tier into a higher one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audit.services import record
from core import clock, jobs
from core.errors import StateConflict
from core.humanize import ago
from environments import access
from environments.models import TIER_ORDER, Environment, MaskingRule, RefreshRun, RunState, Tier
from plant.plantdb import SCHEMA_FORMAT, PlantDbError, database_of, has_database

logger = logging.getLogger(__name__)


def freshness_days() -> int:
    return settings.UAT_FRESHNESS_DAYS


# --- Refresh ---------------------------------------------------------------------------------------
def request_refresh(user, target: Environment, source: Environment | None = None) -> RefreshRun:
    source = source or Environment.objects.select_related("site").get(site=target.site, tier=Tier.PROD)
    if TIER_ORDER[source.tier] <= TIER_ORDER[target.tier]:
        raise ValidationError(
            {
                "source": _("Data only flows downwards: %(source)s may not be copied into %(target)s.")
                % {"source": source.tier, "target": target.tier}
            }
        )
    if source.site_id != target.site_id:
        raise ValidationError({"source": _("A refresh copies within one site.")})
    if user is not None and not access.can(user, "configure", target):
        raise PermissionDenied(_("Only a release manager or an admin refreshes an environment's data."))
    for env in (source, target):
        if not has_database(env):
            raise ValidationError(
                {"target": _("%(environment)s has no database configured.") % {"environment": env}}
            )
    with transaction.atomic():
        if RefreshRun.objects.filter(target=target, state__in=[RunState.QUEUED, RunState.RUNNING]).exists():
            raise StateConflict(
                _("A refresh of %(environment)s is already queued or running.") % {"environment": target}
            )
        run = RefreshRun.objects.create(source=source, target=target, requested_by=user)
        record(
            "environments.refresh.requested",
            run,
            actor=user,
            actor_name=None if user else "system",
            after={"source": str(source), "target": str(target)},
        )
        jobs.nudge("deployments.tasks.run_refresh", run.pk)
    return run


def masking_rules(site) -> list[MaskingRule]:
    return list(MaskingRule.objects.filter(Q(site=site) | Q(site__isnull=True)))


def run_refresh(run_id: int) -> str:
    run = jobs.claim(RefreshRun, run_id)
    if run is None:
        return "not queued"
    run = RefreshRun.objects.select_related("source", "source__site", "target", "target__site").get(pk=run.pk)
    began = time.perf_counter()
    try:
        source, target = database_of(run.source), database_of(run.target)
        with source.scratch() as staging:
            masked = staging.apply_masks(masking_rules(run.target.site))
            size = staging.copy_into(target)
    except PlantDbError as exc:
        run.state, run.error = RunState.FAILED, str(exc)
    else:
        run.state, run.bytes, run.masked = RunState.PASSED, size, masked
    run.finished_at, run.duration_seconds = clock.now(), round(time.perf_counter() - began, 3)
    run.save(update_fields=["state", "error", "bytes", "masked", "finished_at", "duration_seconds"])
    if run.state == RunState.PASSED:
        Environment.objects.filter(pk=run.target_id).update(data_refreshed_at=run.finished_at)
        record_fingerprint(Environment.objects.get(pk=run.target_id))
    record(
        f"environments.refresh.{run.state}",
        run,
        actor_name="system",
        after={
            "source": str(run.source),
            "target": str(run.target),
            "bytes": run.bytes,
            "duration_seconds": run.duration_seconds,
            "masked": run.masked,
            "error": run.error,
        },
    )
    return run.state


def refresh_due() -> list[int]:
    """Beat's monthly refresh: UAT environments whose refresh_every_days has passed."""
    made = []
    now = clock.now()
    for env in Environment.objects.filter(tier=Tier.UAT, refresh_every_days__gt=0).select_related("site"):
        if env.data_refreshed_at and env.data_refreshed_at > now - timedelta(days=env.refresh_every_days):
            continue
        try:
            made.append(request_refresh(None, env).pk)
        except (ValidationError, StateConflict, Environment.DoesNotExist) as exc:
            logger.info("scheduled refresh of %s skipped: %s", env, exc)
    return made


def freshness(environment: Environment) -> tuple[bool, str]:
    """The gate's answer for the environment that proves a release (E3: refreshed from PROD less than
    30 days ago). Fails closed: without a database there is no data to judge, and the answer says
    what to configure."""
    if not has_database(environment):
        return (
            False,
            _(
                "%(environment)s has no database configured, so its data cannot be refreshed or judged: "
                "add a sqlite or postgres backup adapter (the plant's database) to its pipeline"
            )
            % {"environment": environment},
        )
    if environment.data_refreshed_at is None:
        return False, _("%(environment)s was never refreshed from PROD") % {"environment": environment}
    age = clock.now() - environment.data_refreshed_at
    days = age.total_seconds() / 86400
    when = f"{environment.data_refreshed_at:%Y-%m-%d %H:%M} UTC"
    if age >= timedelta(days=freshness_days()):
        return (
            False,
            _("%(environment)s data is %(days)s days old (refreshed %(when)s; limit %(limit)s days)")
            % {"environment": environment, "days": f"{days:.0f}", "when": when, "limit": freshness_days()},
        )
    return True, _("%(environment)s refreshed %(ago)s (%(when)s)") % {
        "environment": environment,
        "ago": ago(age),
        "when": when,
    }


# --- Drift (E8) -------------------------------------------------------------------------------------
def _directory_hash(path: str) -> str | None:
    folder = Path(path)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for item in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(item.relative_to(folder)).encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()


def compute_fingerprint(environment: Environment) -> dict:
    pipeline = environment.pipeline or {}
    adapters = sorted(
        {
            spec.get("adapter", "?")
            for key, value in pipeline.items()
            if isinstance(value, (dict, list))
            for spec in (value if isinstance(value, list) else [value])
        }
    )
    fingerprint = {"versions": environment.versions, "adapters": adapters}
    if has_database(environment):
        try:  # the schema and the tables' names: drift compares no data (UAT holds masked PROD data)
            structure = database_of(environment).structure()
            fingerprint["schema"] = structure.schema
            fingerprint["schema_format"] = SCHEMA_FORMAT
            fingerprint["tables"] = sorted(structure.tables)
        except PlantDbError as exc:
            fingerprint["database_error"] = str(exc)
    snapshot = pipeline.get("snapshot") or {}
    if snapshot.get("adapter") == "directory":
        fingerprint["application"] = _directory_hash(snapshot.get("path", ""))
    if pipeline.get("config"):  # the configuration as it is there, setting by setting
        from plant import config

        try:
            fingerprint["config"] = config.present(environment)
        except config.ConfigError as exc:
            fingerprint["config_error"] = str(exc)
    return fingerprint


def record_fingerprint(environment: Environment) -> dict:
    """Fingerprint the environment as it is now: read afresh, so a caller holding a copy from before a
    deployment never records the version that ran before it (E8: no false drift)."""
    fingerprint = compute_fingerprint(Environment.objects.get(pk=environment.pk))
    Environment.objects.filter(pk=environment.pk).update(fingerprint=fingerprint, fingerprint_at=clock.now())
    environment.fingerprint = fingerprint
    return fingerprint


LABELS = {
    "versions": gettext_lazy("product versions"),
    # fingerprints recorded before environments ran several products
    "version": gettext_lazy("release version"),
    "adapters": gettext_lazy("deployment adapters"),
    "schema": gettext_lazy("database schema"),
    "tables": gettext_lazy("tables"),
    "application": gettext_lazy("application files"),
    "database_error": gettext_lazy("database"),
    "config": gettext_lazy("configuration"),
    "config_error": gettext_lazy("configuration"),
}
CONFIG_LINES = 20  # settings that differ, listed one by one; the rest counted


def _version_drift(lower: Environment, higher: Environment, a: dict, b: dict) -> list[str]:
    """A line per product whose version differs between the tiers ("MES: UAT 2.4.0, PROD 2.3.1"), or
    that runs in one tier only."""
    lines = []
    for product in sorted(set(a) | set(b)):
        if product not in b:
            lines.append(
                _("%(product)s: only in %(tier)s (%(version)s), not in %(other)s")
                % {"product": product, "tier": lower.tier, "version": a[product], "other": higher.tier}
            )
        elif product not in a:
            lines.append(
                _("%(product)s: only in %(tier)s (%(version)s), not in %(other)s")
                % {"product": product, "tier": higher.tier, "version": b[product], "other": lower.tier}
            )
        elif a[product] != b[product]:
            lines.append(f"{product}: {lower.tier} {a[product]}, {higher.tier} {b[product]}")
    return lines


def config_drift(low: str, high: str, a: dict, b: dict) -> list[str]:
    """A line per setting that differs between two tiers' configuration ("erp-settings · plant.currency:
    UAT EUR, PROD USD"; "—" where a tier lacks it), the first CONFIG_LINES of them."""
    from environments.config import diff

    rows = diff(a, b)
    lines = [
        f"{bundle} · {key}: {low} {'—' if x is None else x}, {high} {'—' if y is None else y}"
        for bundle, key, x, y in rows[:CONFIG_LINES]
    ]
    if len(rows) > CONFIG_LINES:
        more = len(rows) - CONFIG_LINES
        lines.append(
            ngettext("… and %(count)d more setting differs", "… and %(count)d more settings differ", more)
            % {"count": more}
        )
    return lines


def _same_schema_format(a: dict, b: dict) -> bool:
    """Schema digests of different formats differ whatever the schemas: such a pair is not compared
    (no false drift) until the older fingerprint is recorded again — after the environment's next
    deployment or refresh, or with "Record the fingerprint now". Fingerprints from before the format
    was recorded are format 1."""
    return a.get("schema_format", 1) == b.get("schema_format", 1)


def drift(lower: Environment, higher: Environment) -> list[str]:
    """What differs between two tiers' recorded fingerprints, in a reviewer's words; versions are
    compared product by product (E8)."""
    a, b = lower.fingerprint or {}, higher.fingerprint or {}
    if not a or not b:
        return [
            _("no fingerprint recorded for %(environment)s yet") % {"environment": lower if not a else higher}
        ]
    lines = []
    for key in [k for k in LABELS if k in a or k in b]:
        if a.get(key) == b.get(key) or (key == "schema" and not _same_schema_format(a, b)):
            continue
        label = LABELS.get(key, key)
        if key == "tables":
            only_low = sorted(set(a.get(key, [])) - set(b.get(key, [])))
            only_high = sorted(set(b.get(key, [])) - set(a.get(key, [])))
            if only_low:
                lines.append(
                    _("tables only in %(tier)s: %(tables)s")
                    % {"tier": lower.tier, "tables": ", ".join(only_low)}
                )
            if only_high:
                lines.append(
                    _("tables only in %(tier)s: %(tables)s")
                    % {"tier": higher.tier, "tables": ", ".join(only_high)}
                )
        elif key == "versions":
            lines.extend(_version_drift(lower, higher, a.get(key) or {}, b.get(key) or {}))
        elif key == "config":
            lines.extend(config_drift(lower.tier, higher.tier, a.get(key) or {}, b.get(key) or {}))
        elif key == "version":
            lines.append(f"{label}: {lower.tier} {a.get(key) or '—'}, {higher.tier} {b.get(key) or '—'}")
        elif key == "adapters":
            lines.append(
                f"{label}: {lower.tier} {', '.join(a.get(key, []))}; {higher.tier} {', '.join(b.get(key, []))}"
            )
        else:
            lines.append(_("%(label)s differ") % {"label": label})
    return lines


def drift_against_neighbour(environment: Environment) -> tuple[Environment | None, list[str]]:
    """Drift between an environment and the tier it is compared with (PROD ↔ UAT, others ↔ PROD):
    what the environment page and the API show."""
    compare_tier = Tier.UAT if environment.tier == Tier.PROD else Tier.PROD
    other = Environment.objects.filter(site=environment.site_id, tier=compare_tier).first()
    if other is None:
        return None, []
    lower, higher = (
        (environment, other)
        if TIER_ORDER[environment.tier] < TIER_ORDER[compare_tier]
        else (other, environment)
    )
    return other, drift(lower, higher)
