"""Change models (issue 16 item 2): standard changes are pre-approved templates for routine work,
approved once through the normal chain, with a scope and an expiry. A matching RFC skips the
approval chain but never the gates, windows or evidence; each use is audited and listed on the
template; a rollback suspends the template at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from approvals import services as approvals
from approvals import standard
from approvals.models import Approval, StandardChangeState, StandardChangeUse
from audit.models import AuditEvent
from core import clock
from core.errors import RuleViolation, StateConflict
from deployments.states import DeploymentState as S
from deployments.states import move
from releases import gates
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import PASSWORD, client_for
from workflow import services as wf

pytestmark = pytest.mark.django_db


def propose(people, sites, **fields):
    defaults = {
        "name": "Label template update",
        "description": "Swap a label template; the printer service restarts in 5 s.",
        "products": ["MES"],
        "sites": sites,
        "max_class": "patch",
        "expires_at": clock.now() + timedelta(days=180),
    }
    return standard.propose(people["admin"], **{**defaults, **fields})


def approved_template(people, sites, **fields):
    """Proposed by an admin, signed by the chain of a patch (the IT manager)."""
    template = propose(people, sites, **fields)
    while standard.open_steps(template):
        role = standard.open_steps(template)[0][0]
        signer = {"it_manager": "itmanager", "operations_manager": "opsmanager", "cio": "cio"}[role]
        standard.sign(people[signer], template, PASSWORD)
    template.refresh_from_db()
    return template


def test_a_template_is_approved_once_through_the_chain_of_its_class(people, site_a):
    template = propose(people, [site_a], max_class="minor")
    assert template.state == StandardChangeState.PROPOSED
    assert standard.steps_text(template) == ["IT Manager", "Operations Manager"]
    with pytest.raises(PermissionDenied):
        standard.sign(people["dev"], template, PASSWORD)
    with pytest.raises(approvals.WrongPassword):
        standard.sign(people["itmanager"], template, "wrong")
    assert AuditEvent.objects.filter(action="approvals.standard_change.signature_refused").count() == 1
    standard.sign(people["itmanager"], template, PASSWORD)
    template.refresh_from_db()
    assert template.state == StandardChangeState.PROPOSED
    standard.sign(people["opsmanager"], template, PASSWORD)
    template.refresh_from_db()
    assert template.state == StandardChangeState.ACTIVE and template.approved_at is not None
    assert AuditEvent.objects.filter(action="approvals.standard_change.approved").exists()
    with pytest.raises(StateConflict):
        standard.sign(people["cio"], template, PASSWORD)


def test_only_an_admin_proposes_and_bad_scopes_are_refused(people, site_a):
    with pytest.raises(PermissionDenied):
        standard.propose(
            people["dev"],
            name="x",
            description="y",
            products=["MES"],
            sites=[site_a],
            max_class="patch",
            expires_at=clock.now() + timedelta(days=1),
        )
    with pytest.raises(ValidationError) as refused:
        propose(people, [], products=[], expires_at=clock.now() - timedelta(days=1))
    assert set(refused.value.message_dict) == {"sites", "products", "expires_at"}
    with pytest.raises(ValidationError, match="two years"):
        propose(people, [site_a], expires_at=clock.now() + timedelta(days=1000))


def test_a_matching_rfc_skips_the_chain_but_not_the_gates(people, site_a):
    template = approved_template(people, [site_a])
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    assert standard.matching(rfc) == [template]
    wf.transition(people["dev"], rfc, "submit", data={"standard_change": str(template.uuid)})
    rfc = Rfc.objects.get(pk=rfc.pk)
    assert rfc.state == RfcState.APPROVED
    assert not Approval.objects.filter(rfc=rfc).exists()  # no signatures asked
    use = StandardChangeUse.objects.get(rfc=rfc)
    assert use.template == template and use.used_by == people["dev"]
    used = AuditEvent.objects.get(action="approvals.standard_change.used")
    assert used.after == {"rfc": rfc.number, "round": 1}
    judged = {g.name: g for g in gates.evaluate(rfc, "schedule")}
    assert (
        judged["Approvals complete"].passed
        and "standard change Label template update" in judged["Approvals complete"].reason
    )
    # The gates still judge it: without a PROD slot, the window gate refuses to deploy.
    assert not {g.name: g for g in gates.evaluate(rfc, "deploy")}["Deployment window"].passed
    page = (
        client_for(people["admin"]).get(reverse("approvals:standard", args=[template.uuid])).content.decode()
    )
    assert rfc.number in page


def test_the_gates_still_refuse_a_standard_change(people, site_a):
    template = approved_template(people, [site_a])
    unproven = factories.rfc(people["dev"], site_a)  # no UAT sign-off
    with pytest.raises(RuleViolation, match="UAT sign-off"):
        wf.transition(people["dev"], unproven, "submit", data={"standard_change": str(template.uuid)})
    assert Rfc.objects.get(pk=unproven.pk).state == RfcState.DRAFT
    assert not StandardChangeUse.objects.exists()


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("does not cover PLB", lambda people, site_a, site_b: {"site": site_b}),
        ("covers changes up to patch", lambda people, site_a, site_b: {"version": "1.1.0"}),
        ("covers MES, not ERP", lambda people, site_a, site_b: {"product": "ERP"}),
        ("high-risk change goes through the chain", lambda people, site_a, site_b: {"risky": True}),
    ],
)
def test_an_rfc_outside_the_scope_is_refused(people, site_a, site_b, why, change):
    template = approved_template(people, [site_a])
    spec = change(people, site_a, site_b)
    site = spec.get("site", site_a)
    fields = {}
    if "product" in spec:
        from environments.models import ProductVersion

        ProductVersion.objects.bulk_create(
            ProductVersion(environment=env, product="ERP", version="1.0.0") for env in site.environments.all()
        )
        fields["release"] = factories.release(people["dev"], "1.0.1", product="ERP")
    if spec.get("risky"):
        fields["risk_answers"] = {**factories.low_risk(), "gxp": 3}
    rfc = factories.ready_rfc(
        people["dev"], people["tester"], site, version=spec.get("version", "1.0.1"), **fields
    )
    assert standard.matching(rfc) == []
    assert why in standard.refusal(template, rfc)
    with pytest.raises(RuleViolation, match=why):
        wf.transition(people["dev"], rfc, "submit", data={"standard_change": str(template.uuid)})
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.DRAFT


def test_an_expired_template_approves_nothing(people, site_a, time_machine):
    template = approved_template(people, [site_a], expires_at=clock.now() + timedelta(days=1))
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    time_machine.move_to(clock.now() + timedelta(days=2))
    assert "expired on" in standard.refusal(template, rfc)
    with pytest.raises(RuleViolation, match="expired"):
        wf.transition(people["dev"], rfc, "submit", data={"standard_change": str(template.uuid)})


def test_a_rollback_suspends_the_template_and_holds_its_other_rfcs(people, site_a):
    template = approved_template(people, [site_a])
    first = factories.ready_rfc(people["dev"], people["tester"], site_a)
    second = factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.2")
    for rfc in (first, second):
        wf.transition(people["dev"], rfc, "submit", data={"standard_change": str(template.uuid)})
    Rfc.objects.filter(pk=first.pk).update(state=RfcState.SCHEDULED)
    deployment = factories.booking(first, site_a, people["releasemgr"])
    for target in (S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK):
        move(deployment, target, outcome="The smoke test failed.")
    template.refresh_from_db()
    assert template.state == StandardChangeState.SUSPENDED
    assert first.number in template.suspend_reason
    event = AuditEvent.objects.get(action="approvals.standard_change.suspended")
    assert event.actor_name == "system"
    # The other RFC it approved may not go on: its approval now points at a suspended template.
    gate = {g.name: g for g in gates.evaluate(Rfc.objects.get(pk=second.pk), "schedule")}[
        "Approvals complete"
    ]
    assert not gate.passed and "was suspended" in gate.reason
    third = factories.ready_rfc(people["dev"], people["tester"], site_a, version="1.0.3")
    assert standard.matching(third) == []


def test_an_admin_suspends_by_hand_with_a_reason(people, site_a):
    template = approved_template(people, [site_a])
    with pytest.raises(ValidationError):
        standard.suspend(template, " ", actor=people["admin"])
    with pytest.raises(PermissionDenied):
        standard.suspend(template, "no", actor=people["dev"])
    assert standard.suspend(template, "The vendor changed the label engine.", actor=people["admin"])
    assert not standard.suspend(template, "again", actor=people["admin"])


def test_the_pages_propose_sign_and_offer_the_template_on_the_rfc(people, site_a):
    admin = client_for(people["admin"])
    bad = admin.post(reverse("approvals:standard_list"), {"name": "Label template update"})
    assert bad.status_code == 400
    made = admin.post(
        reverse("approvals:standard_list"),
        {
            "name": "Label template update",
            "description": "Swap a label template.",
            "products": "MES",
            "sites": [site_a.pk],
            "max_class": "patch",
            "expires_on": (clock.now() + timedelta(days=90)).date().isoformat(),
        },
    )
    assert made.status_code == 302
    template = standard.StandardChange.objects.get()
    it = client_for(people["itmanager"])
    page = it.get(made.url).content.decode()
    assert "Sign the template" in page and "Still to sign: IT Manager" in page
    wrong = it.post(reverse("approvals:standard_sign", args=[template.uuid]), {"password": "nope"})
    assert wrong.status_code == 403
    assert (
        it.post(reverse("approvals:standard_sign", args=[template.uuid]), {"password": PASSWORD}).status_code
        == 302
    )
    template.refresh_from_db()
    assert template.state == StandardChangeState.ACTIVE

    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    dev = client_for(people["dev"])
    detail = dev.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "Submit as a standard change" in detail and "Label template update" in detail
    submitted = dev.post(
        reverse("releases:transition", args=[rfc.uuid, "submit"]), {"standard_change": str(template.uuid)}
    )
    assert submitted.status_code == 302
    assert Rfc.objects.get(pk=rfc.pk).state == RfcState.APPROVED
    assert (
        "Standard changes" in client_for(people["itmanager"]).get(reverse("approvals:queue")).content.decode()
    )


def test_a_pipeline_submits_as_a_standard_change_over_the_api(people, site_a):
    from tests.conftest import api_client_for

    template = approved_template(people, [site_a])
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    api = api_client_for(people["dev"])
    unknown = api.post(
        f"/api/v1/rfcs/{rfc.uuid}/transition/",
        {"name": "submit", "standard_change": "00000000-0000-0000-0000-000000000000"},
        format="json",
    )
    assert unknown.status_code == 400 and Rfc.objects.get(pk=rfc.pk).state == RfcState.DRAFT
    done = api.post(
        f"/api/v1/rfcs/{rfc.uuid}/transition/",
        {"name": "submit", "standard_change": str(template.uuid)},
        format="json",
    )
    assert done.status_code == 200, done.json()
    assert done.json()["state"] == "approved"
