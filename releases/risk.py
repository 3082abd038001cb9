"""The risk assessment (seed 002, GAMP 5): the depth of approval and testing follows the risk.

An admin keeps the questions (`RiskQuestion`: text, weight 1–10, answered 0–3, optionally computed
from the RFC — the number of target sites — and optionally a "high risk from" answer that makes the
change high risk whatever the score). The author answers them with the RFC; the score is the
weighted answers out of 100 and gives the level: low, medium from `RISK_MEDIUM_FROM`, high from
`RISK_HIGH_FROM`. The level is part of the signed content and of the evidence pack, and it decides:

- the chain: a high-risk change adds the business sign-off (A4, `approvals.services.chain_for`);
- the evidence: a high-risk change needs two key users' UAT sign-off at each site and a rollback
  rehearsed for real (never waived) — the "Risk evidence" gate.

Fail closed: an RFC with an unanswered question has no level and may not be submitted, nor may any
RFC while no question is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from releases.models import RISK_SCALE, RiskLevel, RiskQuestion

SCALE = dict(RISK_SCALE)
TOP = max(SCALE)
# The answers the API takes by name besides 0–3: the scale's English words, whatever the language.
BY_LABEL = {"none": 0, "low": 1, "medium": 2, "high": 3}


@dataclass
class Assessment:
    answers: dict[str, int] = field(default_factory=dict)
    score: int | None = None
    level: str = ""
    missing: list[RiskQuestion] = field(default_factory=list)
    forced_by: list[RiskQuestion] = field(default_factory=list)  # answers that make it high on their own


# The default questionnaire (also seeded by releases/migrations/0009): (key, text, weight, computed,
# high risk from). An admin changes it in the admin site.
DEFAULT_QUESTIONS = [
    ("gxp", "GxP impact: does it touch batch records, quality decisions or GMP data?", 3, "", 3),
    ("safety", "Safety impact: could it affect people, machines or interlocks?", 3, "", 3),
    ("production", "Production impact: how much output is lost if it goes wrong?", 2, "", 0),
    ("sites", "Number of sites it reaches", 1, "sites", 0),
    ("rollback", "Rollback complexity: data migrations, manual steps, other systems to undo?", 2, "", 0),
    ("novelty", "Novelty: how new is this kind of change for the team and the plant?", 1, "", 0),
]


def ensure_default_questions(model=RiskQuestion) -> None:
    """With no question at all on record (a new database), the defaults. Deactivating every question
    is different: then no RFC may be submitted until an admin activates one (fail closed). The
    migration that adds the questionnaire passes its historical model."""
    if model.objects.exists():
        return
    for position, (key, text, weight, computed, high_at) in enumerate(DEFAULT_QUESTIONS):
        model.objects.get_or_create(
            key=key,
            defaults={
                "text": text,
                "weight": weight,
                "computed": computed,
                "high_at": high_at,
                "position": position,
            },
        )


def questions() -> list[RiskQuestion]:
    found = list(RiskQuestion.objects.filter(active=True).order_by("position", "key"))
    if not found:
        ensure_default_questions()
        found = list(RiskQuestion.objects.filter(active=True).order_by("position", "key"))
    return found


def from_sites(count: int) -> int:
    """One site: none; two: low; three or four: medium; five or more: high."""
    return 0 if count <= 1 else 1 if count == 2 else 2 if count <= 4 else 3


def clean(raw) -> dict[str, int]:
    """Answers as the API or a form gives them ({key: 0–3 or "none"…"high"}) → {key: 0–3}."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ValidationError({"risk_answers": _("Give the answers as an object: question key → 0 to 3.")})
    ensure_default_questions()
    known = {q.key for q in RiskQuestion.objects.all()}
    cleaned = {}
    for key, value in raw.items():
        if key not in known:
            raise ValidationError(
                {"risk_answers": _("%(key)s is not a risk question.") % {"key": repr(str(key)[:40])}}
            )
        if isinstance(value, str) and value.strip().lower() in BY_LABEL:
            value = BY_LABEL[value.strip().lower()]
        if isinstance(value, bool) or not isinstance(value, int) or value not in SCALE:
            raise ValidationError({"risk_answers": _("%(key)s: answer 0 (none) to 3 (high).") % {"key": key}})
        cleaned[key] = value
    return cleaned


def assess(given: dict[str, int], site_count: int, asked: list[RiskQuestion] | None = None) -> Assessment:
    asked = questions() if asked is None else asked
    result = Assessment()
    weighted = top = 0
    for question in asked:
        answer = (
            from_sites(site_count)
            if question.computed == RiskQuestion.Computed.SITES
            else given.get(question.key)
        )
        if answer is None:
            result.missing.append(question)
            continue
        result.answers[question.key] = answer
        weighted += answer * question.weight
        top += TOP * question.weight
        if question.high_at and answer >= question.high_at:
            result.forced_by.append(question)
    if result.missing or not asked:
        return result
    result.score = round(100 * weighted / top) if top else 0
    if result.forced_by or result.score >= settings.RISK_HIGH_FROM:
        result.level = RiskLevel.HIGH
    elif result.score >= settings.RISK_MEDIUM_FROM:
        result.level = RiskLevel.MEDIUM
    else:
        result.level = RiskLevel.LOW
    return result


def apply(rfc, site_count: int, given: dict[str, int] | None = None) -> Assessment:
    """Recompute the RFC's assessment (its stored answers unless new ones are given) before a save."""
    answers = dict(rfc.risk_answers or {}) if given is None else given
    result = assess(answers, site_count)
    # Keep what the author answered even while the set is incomplete; computed answers are recomputed.
    rfc.risk_answers = {**{k: v for k, v in answers.items() if k not in result.answers}, **result.answers}
    rfc.risk_score = result.score
    rfc.risk_level = result.level
    return result


def rows(rfc) -> list[dict]:
    """The questions with the RFC's answers, for the RFC page and the evidence pack."""
    answers = rfc.risk_answers or {}
    shown = []
    for question in RiskQuestion.objects.filter(key__in=list(answers)).order_by("position", "key"):
        answer = answers[question.key]
        shown.append(
            {
                "key": question.key,
                "question": question.text,
                "answer": str(SCALE.get(answer, answer)),
                "value": answer,
                "weight": question.weight,
                "computed": bool(question.computed),
                "forces_high": bool(question.high_at and answer >= question.high_at),
            }
        )
    return shown
