"""The risk assessment (seed 002, GAMP 5, A4; issue 16 item 3): configurable weighted questions give
a score and a level; the level picks the chain (high adds the business sign-off) and the evidence
(two key users' UAT sign-off per site, a rollback rehearsed for real); the answers and the score are
signed content and part of the evidence pack; an unanswered question, or no question at all, keeps
the RFC from being submitted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals import services as approvals
from approvals.models import ApprovalRound
from core.roles import Role
from releases import gates, risk
from releases.models import Rfc, RiskLevel, RiskQuestion
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, api_client_for, client_for
from workflow import services as wf
from workflow import waivers

pytestmark = pytest.mark.django_db
NONE = {"gxp": 0, "safety": 0, "production": 0, "rollback": 0, "novelty": 0}


# Default weights: GxP 3, safety 3, production 2, sites 1, rollback 2, novelty 1 → 36 at most.
@pytest.mark.parametrize(
    ("answers", "sites", "score", "level"),
    [
        ({}, 1, 0, RiskLevel.LOW),
        ({"production": 2, "novelty": 1}, 1, 14, RiskLevel.LOW),
        ({"production": 3, "rollback": 3}, 1, 33, RiskLevel.MEDIUM),
        ({"production": 3, "rollback": 3, "novelty": 3}, 2, 44, RiskLevel.MEDIUM),
        ({"gxp": 3}, 1, 25, RiskLevel.HIGH),  # a GxP "high" makes it high whatever the score
        ({"safety": 3}, 1, 25, RiskLevel.HIGH),
        ({"gxp": 2, "production": 3, "rollback": 3, "novelty": 3}, 2, 61, RiskLevel.HIGH),
        ({"gxp": 2, "safety": 2, "production": 3, "rollback": 3, "novelty": 3}, 5, 83, RiskLevel.HIGH),
    ],
)
def test_the_scoring_table(answers, sites, score, level):
    result = risk.assess({**NONE, **answers}, sites)
    assert (result.score, result.level) == (score, level)
    assert result.answers["sites"] == risk.from_sites(sites)


def test_an_unanswered_question_leaves_no_level_and_keeps_the_rfc_from_submission(people, site_a):
    partial = {"gxp": 0, "safety": 0}
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a, risk_answers=partial)
    assert rfc.risk_level == "" and rfc.risk_score is None and rfc.risk_answers["gxp"] == 0
    gate = next(g for g in gates.evaluate(rfc) if g.name == "Risk assessed")
    assert not gate.passed and "Production impact" in gate.reason and "Novelty" in gate.reason
    with pytest.raises(Exception, match="Risk assessed"):
        wf.submit(people["dev"], rfc)
    # Answering the rest (the others kept) gives the level, and the RFC may go.
    rfc = wf.update_rfc(people["dev"], rfc, risk_answers={"production": 1, "rollback": 0, "novelty": 0})
    assert rfc.risk_level == RiskLevel.LOW and rfc.risk_answers["gxp"] == 0
    wf.submit(people["dev"], rfc)
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.SUBMITTED


def test_with_no_active_question_nothing_is_submitted(people, site_a):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    RiskQuestion.objects.update(active=False)
    gate = next(g for g in gates.evaluate(rfc) if g.name == "Risk assessed")
    assert not gate.passed and "No risk question is configured" in gate.reason


def test_a_high_score_adds_the_business_sign_off_and_the_high_risk_evidence(people, site_a):
    high = {**NONE, "gxp": 3}
    rfc = factories.rfc(people["dev"], site_a, risk_answers=high)
    assert rfc.risk_level == RiskLevel.HIGH and not rfc.high_risk and rfc.is_high_risk
    factories.promote(rfc, site_a)
    wf.sign_off_uat(people["tester"], rfc, site_a, "Printed 50 labels.", [factories.png()])
    signoffs = next(g for g in gates.evaluate(rfc) if g.name == "High-risk UAT sign-offs")
    assert not signoffs.passed and "PLA has 1 of 2" in signoffs.reason
    # The same key user signing again does not count twice.
    wf.sign_off_uat(people["tester"], rfc, site_a, "Again.", [factories.png()])
    assert not next(g for g in gates.evaluate(rfc) if g.name == "High-risk UAT sign-offs").passed
    wf.sign_off_uat(factories.second_key_user(), rfc, site_a, "Night shift scenario.", [factories.png()])
    assert next(g for g in gates.evaluate(rfc) if g.name == "High-risk UAT sign-offs").passed

    wf.submit(people["dev"], rfc)
    steps = [[str(r) for r in roles] for roles, _, _ in approvals.chain_for(rfc)]
    assert [str(Role.OPERATIONS_MANAGER)] in steps
    assert ApprovalRound.objects.get(rfc=rfc).high_risk


def test_a_low_score_keeps_the_patch_chain(people, site_a):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    assert rfc.risk_level == RiskLevel.LOW and rfc.risk_score == 0
    steps = [[str(r) for r in roles] for roles, _, _ in approvals.chain_for(rfc)]
    assert [str(Role.OPERATIONS_MANAGER)] not in steps
    assert next(g for g in gates.evaluate(rfc) if g.name == "High-risk UAT sign-offs").reason.startswith(
        "Not high risk"
    )


def test_a_high_risk_change_may_not_lean_on_a_waived_rehearsal(people, site_a):
    from deployments.models import CheckKind, CheckRun

    rfc = factories.sign_chain(
        people,
        factories.ready_rfc(people["dev"], people["tester"], site_a, risk_answers={**NONE, "safety": 3}),
    )
    CheckRun.objects.filter(rfc=rfc, kind=CheckKind.REHEARSAL).delete()
    waivers.waive(people["releasemgr"], rfc, "Rollback rehearsed", "The vendor rehearsed it.", PASSWORD)
    judged = {g.name: g for g in gates.evaluate(rfc, "schedule")}
    assert judged["Rollback rehearsed"].passed and judged["Rollback rehearsed"].waived
    assert not judged["High-risk rehearsal"].passed
    assert "rehearsed for real, not waived" in judged["High-risk rehearsal"].reason


def test_the_answers_are_signed_content_and_in_the_evidence_pack(people, site_a):
    from reports.evidence_pack import pack_data

    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    before = approvals.content_hash(rfc)
    assert rfc.snapshot()["risk"] == {"answers": {**NONE, "sites": 0}, "score": 0, "level": "low"}
    rfc = wf.update_rfc(people["dev"], rfc, risk_answers={"production": 3})
    assert approvals.content_hash(rfc) != before
    pack = pack_data(rfc)
    assert pack["rfc"]["risk"]["level"] == "low" and pack["rfc"]["risk"]["score"] == 17
    assert {"key": "production", "answer": "High", "value": 3, "weight": 2}.items() <= next(
        a for a in pack["rfc"]["risk"]["answers"] if a["key"] == "production"
    ).items()


def test_an_rfc_filed_before_the_assessment_keeps_its_signed_content(people, site_a):
    rfc = factories.rfc(people["dev"], site_a)
    Rfc.objects.filter(pk=rfc.pk).update(risk_answers={}, risk_score=None, risk_level="")
    legacy = Rfc.objects.get(pk=rfc.pk)
    assert "risk" not in legacy.snapshot()


def test_the_api_takes_and_shows_the_answers(people, site_a):
    client = api_client_for(people["dev"])
    questions = client.get("/api/v1/risk-questions/").json()
    assert [q["key"] for q in questions] == ["gxp", "safety", "production", "sites", "rollback", "novelty"]
    release = factories.release(people["dev"], "1.0.1")
    body = {
        "title": "Label timeout",
        "description": "Printers time out.",
        "release": str(release.uuid),
        "rollback_plan": "Redeploy 1.0.0",
        "impacts": [{"site": "PLA", "lines": ["Line 2"], "modules": ["Labels"]}],
    }
    refused = client.post("/api/v1/rfcs/", {**body, "risk_answers": {"weather": 1}}, format="json")
    assert refused.status_code == 400 and "'weather' is not a risk question" in refused.json()["detail"]
    assert (
        client.post("/api/v1/rfcs/", {**body, "risk_answers": {"gxp": 7}}, format="json").status_code == 400
    )
    made = client.post("/api/v1/rfcs/", {**body, "risk_answers": {**NONE, "production": 3}}, format="json")
    assert made.status_code == 201, made.json()
    shown = client.get(f"/api/v1/rfcs/{made.json()['uuid']}/").json()
    assert (
        shown["risk_level"] == "low"
        and shown["risk_score"] == 17
        and shown["risk_answers"]["production"] == 3
    )


def test_the_form_asks_the_questions_and_the_rfc_page_shows_the_answers(people, site_a):
    rfc = factories.rfc(people["dev"], site_a, risk_answers={"gxp": 0})
    client = client_for(people["dev"])
    form = client.get(reverse("releases:edit", args=[rfc.uuid])).content.decode()
    assert "GxP impact" in form and 'name="risk_production"' in form and 'name="risk_sites"' not in form
    data = {
        "title": rfc.title,
        "description": rfc.description,
        "release": rfc.release_id,
        "estimated_downtime_minutes": 0,
        "rollback_plan": rfc.rollback_plan,
        "site_PLA_on": "on",
        "site_PLA_lines": "Line 2",
        "site_PLA_modules": "Labelling",
        "risk_gxp": "0",
        "risk_safety": "3",
        "risk_production": "1",
        "risk_rollback": "0",
        "risk_novelty": "0",
    }
    assert client.post(reverse("releases:edit", args=[rfc.uuid]), data).status_code == 302
    rfc.refresh_from_db()
    assert rfc.risk_level == RiskLevel.HIGH and rfc.risk_answers["safety"] == 3
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "High risk</strong>, score" in page and "(makes it high risk)" in page
