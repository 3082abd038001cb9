"""Readiness gates (C5): named checks, each pass or fail with its reason.

The RFC page, the API, submission, the scheduler and the worker all ask `evaluate()`. The
packages that can compute a gate register it here (approvals, window, promotion order, UAT
freshness, idempotent scripts, rollback rehearsed).

Waivers: a gate registered `waivable=True` may be waived for one RFC by a release manager, bound to
the artifact's SHA-256 (`releases.models.GateWaiver`, recorded by `workflow.waivers`). `evaluate()`
then reports the failing gate as passed with `waived=True`, its reason naming who waived it, when,
why, and what the check said. Only evidence about the pipeline may be waived (UAT data fresh, SQL
idempotent, Rollback rehearsed); the gates that carry a person's decision or a hard rule (approvals,
deployment window, promotion order, artifact checksum, UAT sign-off, impact analysis, rollback plan,
downtime matching the class) are never waivable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from core.errors import RuleViolation
from releases.versioning import ChangeClass, VersionRefused, major_change_gaps

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    reason: str
    # A failing gate a release manager waived for this RFC and artifact (then `passed` is True).
    waived: bool = False
    waived_by: str = ""
    waived_at: str | None = None  # ISO 8601, UTC

    def as_dict(self) -> dict:
        return asdict(self)


GateCheck = Callable[["object"], Gate]
_REGISTRY: list[tuple[str, GateCheck, frozenset[str]]] = []
_WAIVABLE: set[str] = set()


def gate(name: str, *, applies_from: frozenset[str] | None = None, waivable: bool = False):
    """Register a gate. `applies_from` limits it to stages (e.g. {"schedule", "deploy"}); `waivable`
    lets a release manager waive it for one RFC (only evidence about the pipeline, never a decision)."""

    def register(func: GateCheck) -> GateCheck:
        _REGISTRY.append((name, func, applies_from or frozenset({"submit", "schedule", "deploy"})))
        if waivable:
            _WAIVABLE.add(name)
        return func

    return register


def waivable(name: str) -> bool:
    return name in _WAIVABLE


def registered(name: str) -> bool:
    return any(known == name for known, _, _ in _REGISTRY)


def evaluate(rfc, stage: str = "submit") -> list[Gate]:
    """Every gate for `stage`, always on freshly read data: a gate never passes on a stale copy.
    A failing waivable gate with a live waiver for the RFC's artifact reads as passed and waived."""
    fresh = _fresh(rfc)
    return _with_waivers(fresh, [check(fresh) for _, check, stages in _REGISTRY if stage in stages])


def unwaived(rfc, name: str) -> Gate | None:
    """What the gate `name` says of `rfc` now, waivers aside (None for an unknown gate)."""
    fresh = _fresh(rfc)
    return next((check(fresh) for known, check, _ in _REGISTRY if known == name), None)


def live_waivers(rfc, names=None):
    """The RFC's waivers that count: not revoked, for the artifact the RFC carries now."""
    from releases.models import GateWaiver

    found = GateWaiver.objects.filter(
        rfc_id=rfc.pk, artifact_sha256=rfc.release.artifact_sha256, revoked_at__isnull=True
    ).select_related("waived_by")
    return found.filter(gate__in=names) if names is not None else found


def waived_reason(waiver) -> str:
    return (
        f"Waived by {waiver.waived_by_name} on {waiver.waived_at:%Y-%m-%d}: {waiver.reason} "
        f"(the check said: {waiver.failing_reason})"
    )


def _with_waivers(rfc, results: list[Gate]) -> list[Gate]:
    waivable_failing = [g.name for g in results if not g.passed and g.name in _WAIVABLE]
    if not waivable_failing or len(rfc.release.artifact_sha256) != 64:
        return results
    waivers = {w.gate: w for w in live_waivers(rfc, waivable_failing)}
    shown = []
    for g in results:
        waiver = waivers.get(g.name) if not g.passed else None
        if waiver is None:
            shown.append(g)
            continue
        shown.append(
            Gate(
                g.name,
                True,
                waived_reason(waiver),
                waived=True,
                waived_by=waiver.waived_by_name,
                waived_at=waiver.waived_at.isoformat(),
            )
        )
    return shown


def _fresh(rfc):
    from django.db.models import Prefetch

    from releases.models import Impact, Rfc, UatSignoff

    return (
        Rfc.objects.select_related("release", "author")
        .prefetch_related(
            Prefetch("impacts", queryset=Impact.objects.select_related("site")),
            Prefetch("signoffs", queryset=UatSignoff.objects.select_related("site", "signed_by")),
        )
        .get(pk=rfc.pk)
    )


def failing(rfc, stage: str = "submit") -> list[Gate]:
    return [g for g in evaluate(rfc, stage) if not g.passed]


@gate("Impact analysis")
def impact_analysis(rfc) -> Gate:
    impacts = list(rfc.impacts.all())
    if not impacts:
        return Gate("Impact analysis", False, "No target site is named.")
    empty = [i.site.code for i in impacts if not i.lines and not i.modules]
    if empty:
        return Gate("Impact analysis", False, f"No affected lines or modules for {', '.join(empty)}.")
    summary = "; ".join(f"{i.site.code}: {len(i.lines)} line(s), {len(i.modules)} module(s)" for i in impacts)
    return Gate("Impact analysis", True, summary)


@gate("Rollback plan")
def rollback_plan(rfc) -> Gate:
    if not rfc.rollback_plan.strip():
        return Gate("Rollback plan", False, "The rollback plan is empty.")
    if rfc.release.migration_sql.strip() and not rfc.release.undo_sql.strip():
        return Gate("Rollback plan", False, "The release has an SQL migration but no undo script.")
    return Gate(
        "Rollback plan",
        True,
        "Rollback plan present"
        + (" with the release's undo script." if rfc.release.undo_sql.strip() else "."),
    )


@gate("Downtime matches class")
def downtime_matches_class(rfc) -> Gate:
    from releases.services import classify_rfc

    try:
        change_class = classify_rfc(rfc.release, [i.site for i in rfc.impacts.all()])
    except VersionRefused as exc:
        return Gate("Downtime matches class", False, str(exc))
    gaps = major_change_gaps(change_class, rfc.estimated_downtime_minutes, rfc.retraining_note)
    if gaps:
        return Gate("Downtime matches class", False, " ".join(gaps.values()))
    if change_class == ChangeClass.MAJOR:
        return Gate(
            "Downtime matches class",
            True,
            f"Major: {rfc.estimated_downtime_minutes} min downtime, retraining planned.",
        )
    downtime = (
        f"{rfc.estimated_downtime_minutes} min downtime declared."
        if rfc.estimated_downtime_minutes
        else "no downtime declared."
    )
    return Gate("Downtime matches class", True, f"{change_class.label}: {downtime}")


@gate("UAT sign-off")
def uat_signoff(rfc) -> Gate:
    signed = {
        s.site_id: s for s in rfc.signoffs.all() if s.voided_at is None and s.release_id == rfc.release_id
    }
    missing = [i.site.code for i in rfc.impacts.all() if i.site_id not in signed]
    if missing:
        return Gate("UAT sign-off", False, f"No UAT sign-off with evidence for {', '.join(missing)}.")
    if not signed:
        return Gate("UAT sign-off", False, "No UAT sign-off yet.")
    who = ", ".join(
        f"{s.site.code} by {s.signed_by.get_full_name() or s.signed_by.username}" for s in signed.values()
    )
    return Gate("UAT sign-off", True, f"Signed off in UAT: {who}.")


@gate("Artifact checksum")
def artifact_checksum(rfc) -> Gate:
    digest = rfc.release.artifact_sha256
    if len(digest) != 64:
        return Gate("Artifact checksum", False, "The release has no artifact with a recorded SHA-256.")
    return Gate("Artifact checksum", True, f"SHA-256 {digest[:12]}… recorded at upload.")


@gate("Risk assessed")
def risk_assessed(rfc) -> Gate:
    from releases import risk

    name = "Risk assessed"
    asked = risk.questions()
    if not asked:
        return Gate(name, False, "No risk question is configured: an admin adds them (Risk questions).")
    result = risk.assess(rfc.risk_answers or {}, len(rfc.impacts.all()), asked)
    if result.missing:
        return Gate(name, False, "Answer the risk questions: " + "; ".join(q.text for q in result.missing))
    level = f"{result.level.capitalize()} risk (score {result.score} of 100)"
    if result.forced_by:
        level += " — high because of: " + "; ".join(q.text.split(":")[0] for q in result.forced_by)
    return Gate(name, True, level + ".")


REHEARSAL = "Rollback rehearsed"
NOT_HIGH = "Not high risk: the usual evidence is enough."


@gate("High-risk UAT sign-offs")
def high_risk_signoffs(rfc) -> Gate:
    """A high-risk change is proven by two key users at each site (seed 002, GAMP 5)."""
    name = "High-risk UAT sign-offs"
    if not rfc.is_high_risk:
        return Gate(name, True, NOT_HIGH)
    signers: dict[int, set[int]] = {}
    for s in rfc.signoffs.all():
        if s.voided_at is None and s.release_id == rfc.release_id:
            signers.setdefault(s.site_id, set()).add(s.signed_by_id)
    short = [
        f"{i.site.code} has {len(signers.get(i.site_id, ()))} of 2"
        for i in rfc.impacts.all()
        if len(signers.get(i.site_id, ())) < 2
    ]
    if short:
        return Gate(
            name,
            False,
            "A high-risk change needs UAT sign-off by two key users at each site: " + ", ".join(short) + ".",
        )
    return Gate(name, True, "High risk: two key users signed off in UAT at each site.")


@gate("High-risk rehearsal", applies_from=frozenset({"schedule", "deploy"}))
def high_risk_rehearsal(rfc) -> Gate:
    """A high-risk change's rollback is rehearsed for real: a waiver of the rehearsal does not count."""
    name = "High-risk rehearsal"
    if not rfc.is_high_risk:
        return Gate(name, True, NOT_HIGH)
    rehearsal = unwaived(rfc, REHEARSAL)
    if rehearsal is None:
        return Gate(name, False, "No rollback rehearsal check is configured.")
    if not rehearsal.passed:
        return Gate(
            name,
            False,
            f"A high-risk change needs its rollback rehearsed for real, not waived: {rehearsal.reason}",
        )
    return Gate(name, True, "High risk: the rollback was rehearsed for real.")


def note_refusal(rfc, stage: str, failed: list[dict]) -> None:
    """Keep the gates that refused `rfc` at `stage` (dicts with a name and a reason) for the dashboard.
    A figure, not a decision: a database error here never hides the refusal itself."""
    from django.db import DatabaseError, transaction

    from core import clock
    from releases.models import GateRefusal

    now = clock.now()
    rows = [
        GateRefusal(
            rfc_id=rfc.pk,
            stage=stage,
            gate=str(g.get("name", ""))[:100],
            reason=str(g.get("reason", ""))[:2000],
            occurred_at=now,
        )
        for g in failed
        if not g.get("passed")
    ]
    try:
        with transaction.atomic():
            GateRefusal.objects.bulk_create(rows)
    except DatabaseError:  # pragma: no cover - the refusal is what matters to the caller
        logger.exception("could not keep the gate refusals of %s", rfc.pk)


@contextmanager
def noting_refusals(rfc, stage: str):
    """Around a transaction that may raise RuleViolation with the failing gates: once it has rolled
    back, keep those gates (note_refusal) and let the refusal go on to the caller."""
    try:
        yield
    except RuleViolation as refusal:
        if refusal.failed:
            note_refusal(rfc, stage, refusal.failed)
        raise
