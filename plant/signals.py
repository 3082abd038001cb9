"""Business signals (seed 001's production-readiness gates and business indicators).

An environment's pipeline declares `signals` (validated by `environments.pipelines.signal_problems`):
numbers read from the plant — the first column of one SQL query in the plant's database, one field
of an HTTP probe's JSON answer, or the number of terminals not on the expected version. A signal
is judged two ways:

- as readiness, before PROD: its `min`/`max` (e.g. queue depth at most 50, 0 integration errors);
  a terminals signal is ready when every terminal runs the environment's active version;
- after the apply, against the value read just before it (its baseline, over `window_seconds`):
  `good` says which way is better, `tolerance` how much worse (a fraction) and `allowance` how much
  worse in absolute terms is still noise; a terminals signal waits up to `within_minutes` for every
  terminal to report the new version.

Fail closed: a signal that cannot be read is a failing signal whose text says what went wrong.
Texts here are records (the deployment journal, the audit trail): they stay in English.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings

from core import clock
from environments.models import Environment, SignalReading, Tier
from plant.plantdb import PlantDbError, database_from_url

DEFAULT_WINDOW = 900
DEFAULT_TOLERANCE = 0.2


class SignalError(Exception):
    """A signal could not be read: the message says why."""


@dataclass
class Reading:
    name: str
    adapter: str
    ok: bool
    text: str
    value: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def declared(environment) -> list[dict]:
    """The environment's signal specs (only well-formed ones reach here: the model validates)."""
    specs = (environment.pipeline or {}).get("signals") or []
    return [s for s in (specs if isinstance(specs, list) else [specs]) if isinstance(s, dict)]


def judged_as_readiness(spec: dict) -> bool:
    return spec["adapter"] == "terminals" or bool({"min", "max"} & set(spec))


def _window(spec: dict) -> int:
    return int(spec.get("window_seconds", DEFAULT_WINDOW))


def _number(value, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise SignalError(f"{where} is {value!r}, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SignalError(f"{where} is {value!r}, not a number") from None


def _read_sql(spec: dict) -> float:
    query = spec["query"].replace("{window}", str(_window(spec)))
    try:
        row = database_from_url(spec["database"]).first_row(query, float(spec.get("timeout", 10)))
    except PlantDbError as exc:
        raise SignalError(f"the query failed: {exc}") from None
    if not row:
        raise SignalError("the query returned no row")
    return _number(row[0], "its first column")


def _read_http(spec: dict) -> float:
    url = spec["url"].replace("{window}", str(_window(spec)))
    try:
        with urllib.request.urlopen(url, timeout=float(spec.get("timeout", 10))) as response:  # noqa: S310
            body = json.loads(response.read(65536).decode())
    except urllib.error.HTTPError as exc:
        raise SignalError(f"GET {url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SignalError(f"GET {url}: {exc}") from None
    value = body
    for key in spec["field"].split("."):
        if not isinstance(value, dict) or key not in value:
            raise SignalError(f"GET {url} has no field {spec['field']!r}")
        value = value[key]
    return _number(value, f"field {spec['field']!r}")


def terminals_behind(environment, spec: dict, version: str | None) -> list[str]:
    """Names of the environment's terminals (of the spec's product, or every product) not on `version`
    (None: each product's active version at the environment)."""
    active = environment.versions
    product = spec.get("product") or ""
    behind = []
    for terminal in environment.terminals.order_by("name"):
        if product and terminal.product != product:
            continue
        expected = version if version is not None else active.get(terminal.product, "")
        if terminal.version != expected:
            behind.append(f"{terminal.name} ({terminal.product} {terminal.version})")
    return behind


def read(spec: dict, environment=None) -> float:
    """The signal's value now. Raises SignalError when it cannot be read."""
    if spec["adapter"] == "sql":
        return _read_sql(spec)
    if spec["adapter"] == "http":
        return _read_http(spec)
    return float(len(terminals_behind(environment, spec, None)))


def _limits(spec: dict, value: float) -> str | None:
    """Why `value` is outside the signal's min/max, or None."""
    if "max" in spec and value > spec["max"]:
        return f"{value:g} is above its maximum {spec['max']:g}"
    if "min" in spec and value < spec["min"]:
        return f"{value:g} is below its minimum {spec['min']:g}"
    return None


def readiness(environment) -> list[Reading]:
    """Every readiness signal of the environment read now (those with min/max, and terminals)."""
    readings = []
    for spec in declared(environment):
        name, kind = spec["name"], spec["adapter"]
        if kind == "terminals":
            behind = terminals_behind(environment, spec, None)
            text = (
                f"{len(behind)} terminal(s) not on the active version: {', '.join(behind[:5])}"
                if behind
                else "every terminal runs the active version"
            )
            readings.append(Reading(name, kind, not behind, text, float(len(behind))))
            continue
        if not judged_as_readiness(spec):
            continue
        try:
            value = read(spec, environment)
        except SignalError as exc:
            readings.append(Reading(name, kind, False, f"could not be read: {exc}"))
            continue
        outside = _limits(spec, value)
        bounds = " and ".join(
            f"{word} {spec[key]:g}" for key, word in (("min", "at least"), ("max", "at most")) if key in spec
        )
        readings.append(Reading(name, kind, outside is None, outside or f"{value:g} ({bounds})", value))
    return readings


def baseline(environment) -> dict:
    """Before the apply: each compared signal's value (or why it could not be read)."""
    values = {}
    for spec in declared(environment):
        if spec["adapter"] == "terminals" or "good" not in spec:
            continue
        try:
            values[spec["name"]] = {"value": read(spec, environment)}
        except SignalError as exc:
            values[spec["name"]] = {"error": str(exc)}
    return values


def limit_of(spec: dict, before: float) -> float:
    """The worst value still acceptable after the apply, given the baseline."""
    tolerance = float(spec.get("tolerance", DEFAULT_TOLERANCE))
    allowance = float(spec.get("allowance", 0))
    if spec["good"] == "higher":
        return min(before * (1 - tolerance), before - allowance)
    return max(before * (1 + tolerance), before + allowance)


def compare(environment, before: dict) -> list[Reading]:
    """After the apply: each compared signal against its baseline and its min/max (X3 for business
    indicators). A signal without a baseline, or that cannot be read now, fails."""
    readings = []
    for spec in declared(environment):
        name, kind = spec["name"], spec["adapter"]
        if kind == "terminals" or "good" not in spec:
            continue
        base = before.get(name) or {}
        if "value" not in base:
            why = base.get("error", "it was not read before the apply")
            readings.append(Reading(name, kind, False, f"no baseline: {why}"))
            continue
        try:
            value = read(spec, environment)
        except SignalError as exc:
            readings.append(Reading(name, kind, False, f"could not be read after the apply: {exc}"))
            continue
        limit = limit_of(spec, base["value"])
        worse = value < limit if spec["good"] == "higher" else value > limit
        word = "at least" if spec["good"] == "higher" else "at most"
        text = f"{value:g} after vs {base['value']:g} before ({word} {limit:g} allowed)"
        outside = _limits(spec, value)
        ok = not worse and outside is None
        readings.append(Reading(name, kind, ok, text if outside is None else f"{text}; {outside}", value))
    return readings


def terminal_specs(environment) -> list[dict]:
    return [spec for spec in declared(environment) if spec["adapter"] == "terminals"]


# --- Readings kept for the gate ----------------------------------------------------------------
def fresh_for() -> timedelta:
    return timedelta(minutes=settings.SIGNALS_FRESH_MINUTES)


def take_reading(environment: Environment, trigger: str) -> SignalReading | None:
    """Read the environment's readiness signals now and keep the reading (None: it declares none)."""
    if not any(judged_as_readiness(spec) for spec in declared(environment)):
        return None
    readings = readiness(environment)
    return SignalReading.objects.create(
        environment=environment,
        ok=all(r.ok for r in readings),
        readings=[r.as_dict() for r in readings],
        trigger=trigger,
    )


def read_due() -> int:
    """Beat: read every PROD environment that declares readiness signals; forget readings older than
    two days (the audit trail and the deployments keep what a decision was based on)."""
    taken = 0
    for environment in Environment.objects.filter(tier=Tier.PROD).select_related("site"):
        if take_reading(environment, "schedule") is not None:
            taken += 1
    SignalReading.objects.filter(taken_at__lt=clock.now() - timedelta(days=2)).delete()
    return taken


def latest(environments) -> dict[int, SignalReading]:
    """The newest fresh reading of each environment, in one query."""
    found: dict[int, SignalReading] = {}
    rows = SignalReading.objects.filter(
        environment__in=environments, taken_at__gte=clock.now() - fresh_for()
    ).order_by("environment_id", "-taken_at", "-pk")
    for row in rows:
        found.setdefault(row.environment_id, row)
    return found
