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

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_noop

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


def evaluate(rfc, stage: str = "submit", only=None, *, fresh=None, waivers=None) -> list[Gate]:
    """Every gate for `stage` (or only those named in `only`), always on freshly read data: a gate never
    passes on a stale copy. A failing waivable gate with a live waiver for the RFC's artifact reads as
    passed and waived. `fresh`: the RFC as `read()` gave it in this request (a page asking two stages
    reads the RFC once); `waivers`: every waiver of the RFC as read in this request (the page lists
    them anyway), of which those that count are picked here."""
    fresh = fresh if fresh is not None else _fresh(rfc)
    return _with_waivers(
        fresh,
        [
            check(fresh)
            for name, check, stages in _REGISTRY
            if stage in stages and (only is None or name in only)
        ],
        waivers,
    )


def only_at_start() -> set[str]:
    """The gates asked only when a deployment starts (they read the plant as it is then)."""
    return {name for name, _, stages in _REGISTRY if stages == frozenset({"deploy"})}


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
    return gettext("Waived by %(name)s on %(date)s: %(reason)s (the check said: %(said)s)") % {
        "name": waiver.waived_by_name,
        "date": date_format(waiver.waived_at, "SHORT_DATE_FORMAT"),
        "reason": waiver.reason,
        "said": waiver.failing_reason,
    }


def _with_waivers(rfc, results: list[Gate], every=None) -> list[Gate]:
    waivable_failing = [g.name for g in results if not g.passed and g.name in _WAIVABLE]
    if not waivable_failing or len(rfc.release.artifact_sha256) != 64:
        return results
    if every is None:
        waivers = {w.gate: w for w in live_waivers(rfc, waivable_failing)}
    else:  # the same choice as live_waivers, over the rows already read
        sha = rfc.release.artifact_sha256
        waivers = {
            w.gate: w
            for w in every
            if w.artifact_sha256 == sha and w.revoked_at is None and w.gate in waivable_failing
        }
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


def read(rfc):
    """The RFC read afresh with what the gates look at, for `evaluate(..., fresh=)`."""
    return _fresh(rfc)


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


# The gates' names are keys (waivers, refusals and the dashboard's figures name them, the API gives
# them): marked here, translated where they are shown. Their reasons are written in the reader's
# language; what is kept of a refusal is written in English (note_refusal).
IMPACT_ANALYSIS = gettext_noop("Impact analysis")
ROLLBACK_PLAN = gettext_noop("Rollback plan")
DOWNTIME_MATCHES_CLASS = gettext_noop("Downtime matches class")
UAT_SIGNOFF = gettext_noop("UAT sign-off")
ARTIFACT_CHECKSUM = gettext_noop("Artifact checksum")
RISK_ASSESSED = gettext_noop("Risk assessed")
HIGH_RISK_SIGNOFFS = gettext_noop("High-risk UAT sign-offs")
HIGH_RISK_REHEARSAL = gettext_noop("High-risk rehearsal")


@gate(IMPACT_ANALYSIS)
def impact_analysis(rfc) -> Gate:
    impacts = list(rfc.impacts.all())
    if not impacts:
        return Gate(IMPACT_ANALYSIS, False, gettext("No target site is named."))
    empty = [i.site.code for i in impacts if not i.lines and not i.modules]
    if empty:
        return Gate(
            IMPACT_ANALYSIS,
            False,
            gettext("No affected lines or modules for %(sites)s.") % {"sites": ", ".join(empty)},
        )
    summary = "; ".join(
        gettext("%(site)s: %(lines)s line(s), %(modules)s module(s)")
        % {"site": i.site.code, "lines": len(i.lines), "modules": len(i.modules)}
        for i in impacts
    )
    return Gate(IMPACT_ANALYSIS, True, summary)


@gate(ROLLBACK_PLAN)
def rollback_plan(rfc) -> Gate:
    if not rfc.rollback_plan.strip():
        return Gate(ROLLBACK_PLAN, False, gettext("The rollback plan is empty."))
    if rfc.release.migration_sql.strip() and not rfc.release.undo_sql.strip():
        return Gate(ROLLBACK_PLAN, False, gettext("The release has an SQL migration but no undo script."))
    return Gate(
        ROLLBACK_PLAN,
        True,
        gettext("Rollback plan present with the release's undo script.")
        if rfc.release.undo_sql.strip()
        else gettext("Rollback plan present."),
    )


@gate(DOWNTIME_MATCHES_CLASS)
def downtime_matches_class(rfc) -> Gate:
    from releases.services import classify_rfc, site_environments

    try:
        change_class = classify_rfc(rfc.release, [i.site for i in rfc.impacts.all()], site_environments(rfc))
    except VersionRefused as exc:
        return Gate(DOWNTIME_MATCHES_CLASS, False, str(exc))
    gaps = major_change_gaps(change_class, rfc.estimated_downtime_minutes, rfc.retraining_note)
    if gaps:
        return Gate(DOWNTIME_MATCHES_CLASS, False, " ".join(gaps.values()))
    minutes = rfc.estimated_downtime_minutes
    if change_class == ChangeClass.MAJOR:
        return Gate(
            DOWNTIME_MATCHES_CLASS,
            True,
            gettext("Major: %(minutes)s min downtime, retraining planned.") % {"minutes": minutes},
        )
    if minutes:
        text = gettext("%(class)s: %(minutes)s min downtime declared.")
    else:
        text = gettext("%(class)s: no downtime declared.")
    return Gate(DOWNTIME_MATCHES_CLASS, True, text % {"class": change_class.label, "minutes": minutes})


@gate(UAT_SIGNOFF)
def uat_signoff(rfc) -> Gate:
    signed = {
        s.site_id: s for s in rfc.signoffs.all() if s.voided_at is None and s.release_id == rfc.release_id
    }
    missing = [i.site.code for i in rfc.impacts.all() if i.site_id not in signed]
    if missing:
        return Gate(
            UAT_SIGNOFF,
            False,
            gettext("No UAT sign-off with evidence for %(sites)s.") % {"sites": ", ".join(missing)},
        )
    if not signed:
        return Gate(UAT_SIGNOFF, False, gettext("No UAT sign-off yet."))
    who = ", ".join(
        gettext("%(site)s by %(name)s")
        % {"site": s.site.code, "name": s.signed_by.get_full_name() or s.signed_by.username}
        for s in sorted(signed.values(), key=lambda s: s.site.code)  # the same order on every database
    )
    return Gate(UAT_SIGNOFF, True, gettext("Signed off in UAT: %(who)s.") % {"who": who})


@gate(ARTIFACT_CHECKSUM)
def artifact_checksum(rfc) -> Gate:
    digest = rfc.release.artifact_sha256
    if len(digest) != 64:
        return Gate(ARTIFACT_CHECKSUM, False, gettext("The release has no artifact with a recorded SHA-256."))
    return Gate(
        ARTIFACT_CHECKSUM, True, gettext("SHA-256 %(digest)s… recorded at upload.") % {"digest": digest[:12]}
    )


@gate(RISK_ASSESSED)
def risk_assessed(rfc) -> Gate:
    from releases import risk

    name = RISK_ASSESSED
    asked = risk.questions()
    if not asked:
        return Gate(
            name, False, gettext("No risk question is configured: an admin adds them (Risk questions).")
        )
    result = risk.assess(rfc.risk_answers or {}, len(rfc.impacts.all()), asked)
    if result.missing:
        return Gate(
            name,
            False,
            gettext("Answer the risk questions: %(questions)s")
            % {"questions": "; ".join(q.text for q in result.missing)},
        )
    level = {
        "low": gettext("Low risk (score %(score)s of 100)"),
        "medium": gettext("Medium risk (score %(score)s of 100)"),
        "high": gettext("High risk (score %(score)s of 100)"),
    }[result.level] % {"score": result.score}
    if result.forced_by:
        return Gate(
            name,
            True,
            gettext("%(level)s — high because of: %(questions)s.")
            % {"level": level, "questions": "; ".join(q.text.split(":")[0] for q in result.forced_by)},
        )
    return Gate(name, True, level + ".")


REHEARSAL = gettext_noop("Rollback rehearsed")  # the gate deployments/checks.py registers
NOT_HIGH = gettext_noop("Not high risk: the usual evidence is enough.")


@gate(HIGH_RISK_SIGNOFFS)
def high_risk_signoffs(rfc) -> Gate:
    """A high-risk change is proven by two key users at each site (seed 002, GAMP 5)."""
    name = HIGH_RISK_SIGNOFFS
    if not rfc.is_high_risk:
        return Gate(name, True, gettext(NOT_HIGH))
    signers: dict[int, set[int]] = {}
    for s in rfc.signoffs.all():
        if s.voided_at is None and s.release_id == rfc.release_id:
            signers.setdefault(s.site_id, set()).add(s.signed_by_id)
    short = [
        gettext("%(site)s has %(count)s of 2")
        % {"site": i.site.code, "count": len(signers.get(i.site_id, ()))}
        for i in rfc.impacts.all()
        if len(signers.get(i.site_id, ())) < 2
    ]
    if short:
        return Gate(
            name,
            False,
            gettext("A high-risk change needs UAT sign-off by two key users at each site: %(sites)s.")
            % {"sites": ", ".join(short)},
        )
    return Gate(name, True, gettext("High risk: two key users signed off in UAT at each site."))


@gate(HIGH_RISK_REHEARSAL, applies_from=frozenset({"schedule", "deploy"}))
def high_risk_rehearsal(rfc) -> Gate:
    """A high-risk change's rollback is rehearsed for real: a waiver of the rehearsal does not count."""
    name = HIGH_RISK_REHEARSAL
    if not rfc.is_high_risk:
        return Gate(name, True, gettext(NOT_HIGH))
    rehearsal = unwaived(rfc, REHEARSAL)
    if rehearsal is None:
        return Gate(name, False, gettext("No rollback rehearsal check is configured."))
    if not rehearsal.passed:
        return Gate(
            name,
            False,
            gettext("A high-risk change needs its rollback rehearsed for real, not waived: %(reason)s")
            % {"reason": rehearsal.reason},
        )
    return Gate(name, True, gettext("High risk: the rollback was rehearsed for real."))


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
        for g in _in_english(rfc, stage, failed)
        if not g.get("passed")
    ]
    try:
        with transaction.atomic():
            GateRefusal.objects.bulk_create(rows)
    except DatabaseError:  # pragma: no cover - the refusal is what matters to the caller
        logger.exception("could not keep the gate refusals of %s", rfc.pk)


def _in_english(rfc, stage: str, failed: list[dict]) -> list[dict]:
    """The refused gates as the record keeps them: in English, whatever the language of the request
    that was refused. Reasons given in another language are asked of the gates again, in English,
    when the same gates still fail for the stage; otherwise (a refusal that is not the stage's
    gates, e.g. the calendar's reasons) they are kept as given."""
    language = translation.get_language()
    if not language or language.split("-")[0] == "en":
        return failed
    try:
        with translation.override(None):
            again = {g.name: g.as_dict() for g in failing(rfc, stage)}
    except Exception:  # pragma: no cover - a figure, not a decision
        logger.exception("could not word the gate refusals of %s in English", rfc.pk)
        return failed
    names = {str(g.get("name", "")) for g in failed if not g.get("passed")}
    if names != set(again):
        return failed
    return [again.get(str(g.get("name", "")), g) for g in failed]


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
