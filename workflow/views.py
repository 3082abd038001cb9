"""RFC pages: list, file, edit, the RFC page with gates, evidence, UAT sign-off, approvals and timeline.

Every rule is in `releases.services`; a view turns the refusal into a page: ValidationError 400,
PermissionDenied 403, StateConflict 409, RuleViolation 422 naming the gate.
"""

from __future__ import annotations

from datetime import UTC
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import services as approvals
from approvals import standard
from approvals.models import ApprovalState
from audit import actions
from audit.models import AuditEvent
from core import clock, listing
from core.refusals import REFUSED, filter_error_items, refusal
from deployments import conflicts, scheduling
from deployments import fidelity as staging
from deployments.forms import ScheduleForm
from deployments.states import ACTIVE as ACTIVE_DEPLOYMENT_STATES
from discussion.models import Comment
from environments import access
from environments.windows import rules_for
from notify.watchers import state as follow_state
from plant import uploads
from releases import gates, risk, services
from releases.forms import EvidenceForm, ReleaseForm, RfcForm, SignoffForm
from releases.models import Evidence, Impact, Rfc
from releases.states import EDITABLE_STATES, RfcState
from releases.versioning import VersionRefused
from workflow import exports, fidelity, metrics, reviews, saved_filters, waivers
from workflow import services as wf
from workflow.filters import SORTS, RfcFilterSet
from workflow.models import CloseCode
from workflow.rows import rfc_cells

PAGE_SIZE = 25


def _refused(exc: Exception) -> tuple[int, str, list]:
    r = refusal(exc)
    return r.status, r.message, r.failed


AUDITED_TYPES = ["releases.rfc", "approvals.approvalround", "approvals.approval", "approvals.signature"]
# Scheduling has its own page with the plant calendar; the RFC page offers the rest.
PAGE_TRANSITIONS_EXCLUDED = {"schedule"}
# Re-planning after a failure has its own card on the RFC page (the next steps).
REPLAN = ("rework", "reschedule")


# --- List -------------------------------------------------------------------------------------
@login_required
@require_GET
def rfc_list(request):
    """The RFC list; `RfcFilterSet` filters and sorts it exactly as it does `GET /api/v1/rfcs/`;
    `?format=csv` exports every row the filters keep."""
    rfcs = services.visible_rfcs(request.user).select_related("release", "author")
    filterset = RfcFilterSet(request.GET or None, queryset=rfcs, request=request)
    # A filter the FilterSet refuses shows its message and no rows, as the API answers 400.
    errors = [] if not filterset.is_bound or filterset.is_valid() else filter_error_items(filterset)
    rows = filterset.qs if not errors else rfcs.none()
    sort = request.GET.get("sort", "") if not errors else ""
    if not sort:
        rows = rows.order_by("-created_at", "-id")
    if request.GET.get("format") in exports.FORMATS and not errors:
        impacts = Prefetch("impacts", queryset=Impact.objects.select_related("site"))
        return exports.response(rows.prefetch_related(impacts), request.GET["format"])
    page = Paginator(rows.only(*LIST_COLUMNS), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "releases/list.html",
        {
            "form": filterset.form,
            "errors": errors,
            "page": page,
            "rows": _list_rows(page.object_list),
            "query": query.urlencode(),
            "columns": _sort_columns(request.GET, sort),
            "sort": sort,
            "export": _with(request.GET, format="csv", page=None),
            "export_xlsx": _with(request.GET, format="xlsx", page=None),
            "saved": list(saved_filters.visible(request.user)),
            "saveable": saved_filters.kept_query(request.GET) if not errors else "",
            "sites": access.visible_sites(request.user).order_by("code"),
            "may_file": access.has_any_role(request.user, services.FILERS),
            "figure": _figure(filterset) if not errors else None,
        },
        status=400 if errors else 200,
    )


# What `_list_rows` reads: a page of rows without the long texts and JSON no row shows.
LIST_COLUMNS = (
    "uuid",
    "number",
    "title",
    "high_risk",
    "risk_level",
    "emergency",
    "change_class",
    "state",
    "created_at",
    "release__product",
    "release__version",
    "author__username",
    "author__first_name",
    "author__last_name",
)


def _list_rows(rfcs) -> list[dict]:
    """The list's rows as plain values: labels and addresses made once per page (core.listing)."""
    states = listing.labels(RfcState.choices)
    cells = rfc_cells()
    rfcs = list(rfcs)
    sites = services.site_codes(rfcs)
    return [
        {
            **cells(rfc),
            "release": str(rfc.release),
            "sites": ", ".join(sites[rfc.pk]),
            "state": rfc.state,
            "state_label": states.get(rfc.state, rfc.state),
            "author": rfc.author.get_full_name() or rfc.author.username,
            "created_at": rfc.created_at,
        }
        for rfc in rfcs
    ]


def _figure(filterset) -> dict | None:
    """The dashboard figure the list shows the RFCs of, in words (None for an ordinary list)."""
    data = filterset.form.cleaned_data if filterset.is_bound else {}
    if not data.get("metric"):
        return None
    period = metrics.period(data.get("since"), data.get("until"), metrics.ZONE_UTC)
    return {
        "metric": data["metric"],
        "text": metrics.describe(data["metric"]),
        "since": period.since,
        "until": period.until,
        "site": data.get("site") or "",
    }


def _with(params, **changes) -> str:
    query = params.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value is not None:
            query[key] = value
    return query.urlencode()


def _sort_columns(params, sort: str) -> dict[str, dict]:
    """Per sortable column: the address that sorts by it (ascending, or descending when it is the
    ascending sort now) and its aria-sort state."""
    columns = {}
    for name in SORTS:
        state = "ascending" if sort == name else "descending" if sort == f"-{name}" else "none"
        columns[name] = {
            "query": _with(params, sort=f"-{name}" if state == "ascending" else name, page=None),
            "state": state,
        }
    return columns


@login_required
@require_GET
def my_rfcs(request):
    return redirect(f"{reverse('releases:list')}?mine=on")


# --- Filing and editing -------------------------------------------------------------------------
def _require_filer(user) -> None:
    if not access.has_any_role(user, services.FILERS):
        raise PermissionDenied(gettext("Only developers, release managers and admins file RFCs."))


@login_required
@require_http_methods(["GET", "POST"])
def rfc_create(request):
    _require_filer(request.user)
    initial = {}
    if request.GET.get("release", "").isdigit():
        initial["release"] = int(request.GET["release"])
    form = RfcForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            rfc = services.create_rfc(request.user, impacts=form.impacts(), **form.fields_for_service())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                gettext("%(rfc)s filed as a draft. Add evidence, get UAT signed off, then submit.")
                % {"rfc": rfc.number},
            )
            return redirect("releases:detail", rfc.uuid)
    return render(
        request, "releases/form.html", {"form": form, "rfc": None}, status=400 if form.errors else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
def rfc_edit(request, uuid):
    rfc = services.rfc_or_404(request.user, uuid)
    if rfc.author_id != request.user.pk:
        raise PermissionDenied(gettext("Only the author edits an RFC."))
    if rfc.state not in EDITABLE_STATES:
        messages.error(
            request,
            gettext("%(rfc)s is %(state)s; only a draft can be edited. Withdraw it to draft first.")
            % {"rfc": rfc.number, "state": rfc.get_state_display().lower()},
        )
        return redirect("releases:detail", rfc.uuid)
    form = RfcForm(request.POST or None, user=request.user, rfc=rfc)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            wf.update_rfc(request.user, rfc, impacts=form.impacts(), **form.fields_for_service())
        except ValidationError as exc:
            form.add_service_errors(exc)
        except REFUSED as exc:  # a conflict or a refusal keeps its own status (409, 403)
            form.add_error(None, refusal(exc).message)
            status = refusal(exc).status
        else:
            messages.success(request, gettext("%(rfc)s saved.") % {"rfc": rfc.number})
            return redirect("releases:detail", rfc.uuid)
    if status == 200 and form.errors:
        status = 400
    return render(request, "releases/form.html", {"form": form, "rfc": rfc}, status=status)


@login_required
@require_GET
def classify(request):
    """htmx: the class of change for the chosen release and sites, or why it cannot go to PROD."""
    form = RfcForm(request.GET, user=request.user)
    form.is_valid()
    release = form.cleaned_data.get("release")
    sites = [item["site"] for item in form.impacts()] if hasattr(form, "cleaned_data") else []
    context = {"release": release, "sites": sites}
    if release and sites:
        try:
            context["change_class"] = services.classify_rfc(release, sites)
        except VersionRefused as exc:
            context["refused"] = str(exc)
    return render(request, "releases/_classify.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def release_create(request):
    _require_filer(request.user)
    form = ReleaseForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            release = services.create_release(
                request.user,
                product=data["product"],
                version=data["version"],
                notes=data["notes"],
                artifact=data["artifact"],
                artifact_url=data["artifact_url"],
                artifact_sha256=data["artifact_sha256"],
                migration_sql=data["migration_sql"],
                undo_sql=data["undo_sql"],
                flags=data["flags"],
                config=data["config_files"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                gettext("Release %(release)s recorded with SHA-256 %(digest)s….")
                % {"release": release, "digest": release.artifact_sha256[:12]},
            )
            return redirect(f"{reverse('releases:create')}?release={release.pk}")
    return render(request, "releases/release_form.html", {"form": form}, status=400 if form.errors else 200)


# --- The RFC page -------------------------------------------------------------------------------
def merged_timeline(audit_events, comments) -> list[dict]:
    """The RFC's audit events and comments in one list, in time order (comments after an event of the
    same instant), each with its time in UTC as the page writes it (`iso` for the markup, `when`) and
    an event with its action in words: worked out here, once per action, not per row in the template."""
    labels: dict[str, tuple[str, str]] = {}
    entries = []
    for e in audit_events:
        if e.action not in labels:
            labels[e.action] = (actions.canonical(e.action), actions.label(e.action))
        entries.append({"at": e.occurred_at, "event": e, "action": labels[e.action]})
    entries += [{"at": c.created_at, "comment": c} for c in comments]
    entries.sort(key=lambda entry: (entry["at"], "comment" in entry))
    for entry in entries:
        at = entry["at"].astimezone(UTC)
        entry["iso"], entry["when"] = f"{at:%Y-%m-%dT%H:%M:%SZ}", f"{at:%Y-%m-%d %H:%M:%S}"
    return entries


def _detail_context(request, rfc: Rfc, *, just_read: bool = False) -> dict:
    """`just_read`: `rfc` comes straight from `rfc_or_404` in this GET, read with what the gates look at
    (`rfc_detail_queryset` prefetches all that `gates.read` does): the gates take it as read afresh.
    After a POST the RFC may have been changed in memory, so the gates read it again."""
    user = request.user
    sites = services.rfc_sites(rfc)
    is_draft = rfc.state in EDITABLE_STATES
    stage = (
        "submit" if rfc.state in (RfcState.DRAFT, RfcState.SUBMITTED, RfcState.IN_APPROVAL) else "schedule"
    )
    evidence = list(rfc.evidence.all())
    in_signoffs = {e.pk for signoff in rfc.signoffs.all() for e in signoff.evidence.all()}
    current_evidence = [e for e in evidence if e.superseded_by_id is None]
    for e in current_evidence:
        e.deletable = services.may_delete_evidence(user, rfc, e, in_signoff=e.pk in in_signoffs)
    may_add_evidence = is_draft and services.may_add_evidence(user, rfc)
    signoff_sites = [site for site in sites if is_draft and services.may_sign_off(user, rfc, site)]
    rounds = approvals.rounds_of(rfc)
    # Of the approvals still pending, those this user may sign (no query for a holder of the role).
    my_approvals = approvals.signable(
        user,
        rfc,
        [
            a
            for rnd in rounds
            for step in rnd.step_list
            for a in step.approval_list
            if a.state == ApprovalState.PENDING
        ],
    )
    deployments = list(
        rfc.deployments.select_related("environment", "environment__site").order_by(
            "environment__site__code", "created_at"
        )
    )
    timeline = merged_timeline(
        AuditEvent.objects.filter(object_type__in=AUDITED_TYPES, object_id=rfc.number).order_by("seq"),
        Comment.objects.filter(rfc=rfc).select_related("author").annotate(revision_count=Count("revisions")),
    )
    fresh = rfc if just_read else gates.read(rfc)  # once for both lists of gates
    environments = services.site_environments(fresh)  # the gates, the evidence and the promotion ask
    every_waiver = list(waivers.waivers_of(rfc))  # listed below; the gates pick those that count
    shown_gates = gates.evaluate(rfc, stage, fresh=fresh, waivers=every_waiver)
    if stage == "submit":
        later_gates = gates.evaluate(rfc, "deploy", only=LATER_GATES, fresh=fresh, waivers=every_waiver)
    elif rfc.state in (RfcState.APPROVED, RfcState.SCHEDULED):  # read from the plant when it starts
        later_gates = gates.evaluate(
            rfc, "deploy", only=gates.only_at_start(), fresh=fresh, waivers=every_waiver
        )
    else:
        later_gates = []
    may_waive = waivers.may_waive(user, rfc)
    touched = staging.touches(rfc)
    gaps = staging.open_gaps(rfc, touched) if touched else []
    review = reviews.review_of(rfc)  # no query for an RFC still on its way
    review_pending = review is not None and not review.done
    return {
        "rfc": rfc,
        "following": follow_state(user, rfc),
        "review": review,
        "may_review": review_pending and reviews.may_review(user, rfc),
        "close_codes": CloseCode.choices,
        "changes_requested": approvals.changes_requested(rfc) if rfc.state == RfcState.DRAFT else None,
        "impacts": list(rfc.impacts.all()),
        "neighbours": _neighbours(rfc),
        "gates": shown_gates,
        "gate_stage": stage,
        "later_gates": later_gates,
        "later_gates_read_at_start": stage != "submit",
        # A release manager may waive a failing gate that is waivable (the computed evidence).
        "waivable_gates": {
            g.name
            for g in [*shown_gates, *later_gates]
            if may_waive and not g.passed and gates.waivable(g.name)
        },
        "waivers": [
            (w, w.revoked_at is None and w.artifact_sha256 == rfc.release.artifact_sha256)
            for w in every_waiver
        ],
        "may_waive": may_waive,
        "fidelity_rows": _fidelity_rows(touched),
        "staging_rule": staging.RULE,
        "may_accept_gaps": bool(gaps) and fidelity.may_accept(user, rfc, gaps),
        "acceptances": fidelity.acceptances_of(rfc) if touched else [],
        "evidence_rows": _evidence_rows(user, fresh, environments),
        "config_changes": _config_changes(rfc, sites),
        "current_evidence": current_evidence,
        "superseded_evidence": [e for e in evidence if e.superseded_by_id is not None],
        "signoffs": list(rfc.signoffs.all()),
        "rounds": rounds,
        "my_approvals": my_approvals,
        "timeline": timeline,
        "actions": [
            t
            for t in wf.available_transitions(user, rfc)
            if t.name not in PAGE_TRANSITIONS_EXCLUDED
            and t.name not in REPLAN
            and not (t.name == "close" and review_pending)  # the review first
        ],
        "replan": _replan(user, rfc, review_pending),
        "may_edit": services.may_edit(user, rfc),
        "may_add_evidence": may_add_evidence,
        "may_delete_evidence": is_draft and rfc.submitted_at is None,
        "evidence_form": EvidenceForm(),
        "signoff_sites": signoff_sites,
        "signoff_form": SignoffForm(),
        "deployments": [
            (
                d,
                f"{d.scheduled_start.astimezone(d.environment.site.zone):%a %-d %b %Y %H:%M %Z}",
                f"{d.scheduled_end.astimezone(d.environment.site.zone):%H:%M %Z}",
            )
            for d in deployments
        ],
        "promotion": _promotion(user, sites, environments, deployments),
        "risk_rows": risk.rows(rfc),
        "standard_matches": standard.matching(rfc) if wf.may_transition(user, rfc, "submit") else [],
        "may_schedule": rfc.state == RfcState.APPROVED
        and any(scheduling.may_schedule(user, s) for s in sites),
    }


NEIGHBOURS_SHOWN = 10  # per site: the page stays the same size however many changes share a line


def _neighbours(rfc: Rfc) -> list[tuple[str, list[dict], int]]:
    """(site code, the first other open RFCs sharing an item there, how many more do); each row as the
    page writes it (address, number, title, state and its label, what it shares and when it is booked),
    worked out here once rather than per row in the template."""
    impacts = list(rfc.impacts.all())
    more: dict[int, int] = {}
    found = conflicts.neighbours(rfc, impacts, limit=NEIGHBOURS_SHOWN, left_out=more)
    if not found:
        return []
    detail, states = listing.address("releases:detail"), listing.labels(RfcState.choices)
    rows = []
    for impact in impacts:
        if impact.site_id not in found:
            continue
        entries = []
        for n in found[impact.site_id]:
            other, items = n["rfc"], ", ".join(n["shared"])
            says = (
                gettext("shares %(items)s; booked %(slots)s")
                % {"items": items, "slots": ", ".join(n["bookings"])}
                if n["bookings"]
                else gettext("shares %(items)s") % {"items": items}
            )
            entries.append(
                {
                    "href": detail(other.uuid),
                    "number": other.number,
                    "title": other.title,
                    "state": other.state,
                    "state_label": states.get(other.state, other.state),
                    "says": says,
                }
            )
        rows.append((impact.site.code, entries, more.get(impact.site_id, 0)))
    return rows


def _promotion(user, sites, environments, deployments) -> list[dict]:
    """DEV → UAT → PROD per site: the same artifact's latest deployment on each tier, and the version
    of the release's product each tier runs ("" where the product is not installed)."""
    from environments.models import TIER_ORDER

    latest = {}
    for d in deployments:
        latest[d.environment_id] = d
    rows = []
    by_site: dict[int, list] = {}
    for env in sorted(environments, key=lambda e: TIER_ORDER[e.tier]):
        by_site.setdefault(env.site_id, []).append(env)
    for site in sites:
        cells = []
        for env in by_site.get(site.pk, []):
            d = latest.get(env.pk)
            busy = d is not None and d.state in ACTIVE_DEPLOYMENT_STATES
            cells.append(
                {
                    "env": env,
                    "running": env.running or "",
                    "deployment": d,
                    "may_deploy": not busy and scheduling.may_deploy_now(user, env),
                }
            )
        rows.append({"site": site, "cells": cells})
    return rows


LATER_GATES = {
    "UAT data fresh",
    "SQL idempotent",
    "Rollback rehearsed",
    "Messages reconciled",
    "Parallel run equal",
    staging.RULE,
}


def _fidelity_rows(touched) -> list[dict]:
    """Per target site: the tier that proves the change and the dependencies the RFC touches there."""
    rows: list[dict] = []
    for t in touched:
        if not rows or rows[-1]["site"].pk != t.site.pk:
            rows.append({"site": t.site, "env": t.proving, "tier": t.tier, "touches": []})
        rows[-1]["touches"].append(t)
    return rows


def _config_changes(rfc: Rfc, sites) -> list[tuple]:
    """Per target site, each setting the release's configuration changes against what PROD had when
    its fingerprint was last recorded: (site, [(bundle, key, PROD now, this release)]). No query
    without configuration."""
    if not rfc.release.config:
        return []
    from environments.config import diff
    from environments.models import Environment, Tier

    prods = {e.site_id: e for e in Environment.objects.filter(site__in=[s.pk for s in sites], tier=Tier.PROD)}
    rows = []
    for site in sites:
        present = ((prods.get(site.pk) and prods[site.pk].fingerprint) or {}).get("config") or {}
        changed = diff({b: present.get(b, {}) for b in rfc.release.config}, rfc.release.config)
        rows.append((site, changed))
    return rows


def _evidence_rows(user, rfc: Rfc, environments) -> list[dict]:
    """Per site: the latest idempotency check and rollback rehearsal for this artifact in the tier that
    proves the release (UAT, or DEV where the site has none), its replay reconciliation and parallel
    run where that tier's pipeline declares them, and its drift against PROD."""
    from deployments.checks import CHECKERS, declares, latest, proving_environments
    from deployments.models import CheckKind
    from plant.evidence import drift
    from plant.plantdb import has_database

    prods = {e.site_id: e for e in environments if e.tier == "PROD"}
    idempotency, rehearsal = latest(rfc, CheckKind.IDEMPOTENCY), latest(rfc, CheckKind.REHEARSAL)
    proving_tiers = proving_environments(rfc)
    replay, parallel = (
        latest(rfc, kind) if any(env and declares(env, kind) for _site, env in proving_tiers) else {}
        for kind in (CheckKind.REPLAY, CheckKind.PARALLEL)
    )
    rows = []
    for site, proving in proving_tiers:
        if proving is None:
            continue
        prod = prods.get(site.pk)
        rows.append(
            {
                "site": site,
                "env": proving,
                "has_database": has_database(proving),
                "idempotency": idempotency.get(proving.pk),
                "rehearsal": rehearsal.get(proving.pk),
                "replay_declared": declares(proving, CheckKind.REPLAY),
                "replay": replay.get(proving.pk),
                "parallel_declared": declares(proving, CheckKind.PARALLEL),
                "parallel": parallel.get(proving.pk),
                "drift": drift(proving, prod) if prod is not None else [],
                "may_check": access.has_any_role(user, CHECKERS, site),
            }
        )
    return rows


def _render_detail(request, rfc: Rfc, status: int = 200, just_read: bool = False, **extra):
    context = _detail_context(request, rfc, just_read=just_read)
    # A refused POST answers at its own address (/do/submit/, /evidence/ …): the address bar shows
    # the RFC's (static/js/portal.js), so a reload or a shared link opens the RFC, not the action.
    context["canonical_url"] = reverse("releases:detail", args=[rfc.uuid])
    context.update(extra)
    return render(request, "releases/detail.html", context, status=status)


@login_required
@require_GET
def rfc_detail(request, uuid):
    return _render_detail(request, services.rfc_or_404(request.user, uuid), just_read=True)


def _replan(user, rfc: Rfc, review_pending: bool) -> dict | None:
    """The next steps after a rollback or a failure, once the attempt's review is done."""
    if rfc.state not in (RfcState.ROLLED_BACK, RfcState.FAILED):
        return None
    rework = wf.may_transition(user, rfc, "rework")
    return {
        "ready": not review_pending,
        "rework": rework,
        "reschedule": wf.may_transition(user, rfc, "reschedule"),
        "releases": list(wf.fixed_release_choices(rfc)[:20]) if rework else [],
    }


@login_required
@require_POST
def review_complete(request, uuid):
    """The post-implementation review, completed from the RFC page; "and close" closes it in one go."""
    rfc = services.rfc_or_404(request.user, uuid)
    try:
        reviews.complete(
            request.user,
            rfc,
            close_code=request.POST.get("close_code", ""),
            what_happened=request.POST.get("what_happened", ""),
            follow_ups=request.POST.get("follow_ups", ""),
        )
        if request.POST.get("close"):
            wf.transition(request.user, rfc, "close")
    except ValidationError as exc:
        return _render_detail(
            request, rfc, status=400, review_errors=exc.message_dict, review_form=request.POST
        )
    except REFUSED as exc:
        status, message, failed = _refused(exc)
        return _render_detail(request, rfc, status=status, action_error=message, failed_gates=failed)
    rfc = services.rfc_or_404(request.user, uuid)
    messages.success(
        request,
        gettext("The review of %(rfc)s is complete; %(rfc)s is %(state)s.")
        % {"rfc": rfc.number, "state": rfc.get_state_display().lower()},
    )
    return redirect("releases:detail", rfc.uuid)


@login_required
@require_POST
def rfc_transition(request, uuid, name: str):
    rfc = services.rfc_or_404(request.user, uuid)
    if name in PAGE_TRANSITIONS_EXCLUDED:
        raise Http404
    try:
        data = None
        if name == "rework":
            data = {"release": request.POST.get("release")}  # the fixed release
        elif name == "submit" and request.POST.get("standard_change"):
            data = {"standard_change": request.POST["standard_change"]}  # approved by a template
        wf.transition(request.user, rfc, name, reason=request.POST.get("reason", ""), data=data)
    except REFUSED as exc:
        status, message, failed = _refused(exc)
        return _render_detail(
            request,
            services.rfc_or_404(request.user, uuid),
            status=status,
            action_error=message,
            failed_gates=failed,
            action_name=name,
        )
    rfc = services.rfc_or_404(request.user, uuid)
    messages.success(
        request,
        gettext("%(rfc)s is now %(state)s.") % {"rfc": rfc.number, "state": rfc.get_state_display().lower()},
    )
    return redirect("releases:detail", rfc.uuid)


@login_required
@require_POST
def evidence_add(request, uuid):
    rfc = services.rfc_or_404(request.user, uuid)
    form = EvidenceForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_detail(request, rfc, status=400, evidence_form=form)
    files = form.cleaned_data["file"]
    supersedes = None
    if form.cleaned_data["supersedes"]:
        supersedes = Evidence.objects.filter(rfc=rfc, uuid=form.cleaned_data["supersedes"]).first()
        if supersedes is None:
            raise Http404
        if len(files) > 1:
            form.add_error("file", gettext("A file that supersedes another is uploaded on its own."))
            return _render_detail(request, rfc, status=400, evidence_form=form)
    added = []
    try:
        # All the files, or none: one refused file leaves the RFC as it was.
        with transaction.atomic():
            for upload in files:
                added.append(
                    wf.add_evidence(
                        request.user,
                        rfc,
                        upload,
                        form.cleaned_data["kind"],
                        form.cleaned_data["description"],
                        supersedes=supersedes,
                    )
                )
    except REFUSED as exc:
        status, message, _ = _refused(exc)
        name = getattr(files[len(added)], "name", "") if len(added) < len(files) else ""
        form.add_error(
            "file" if status == 400 else None, f"{name}: {message}" if name and len(files) > 1 else message
        )
        return _render_detail(
            request, services.rfc_or_404(request.user, uuid), status=status, evidence_form=form
        )
    for evidence in added:
        messages.success(
            request,
            gettext("%(name)s added (SHA-256 %(digest)s…).")
            % {"name": evidence.original_name, "digest": evidence.sha256[:12]},
        )
    return redirect(f"{reverse('releases:detail', args=[rfc.uuid])}#evidence")


def _evidence_or_404(request, uuid, evidence_uuid) -> Evidence:
    rfc = services.rfc_or_404(request.user, uuid)
    try:
        return Evidence.objects.select_related("rfc").get(rfc=rfc, uuid=evidence_uuid)
    except (Evidence.DoesNotExist, ValidationError):
        raise Http404("No such file") from None


@login_required
@require_POST
def evidence_delete(request, uuid, evidence_uuid):
    evidence = _evidence_or_404(request, uuid, evidence_uuid)
    try:
        wf.delete_evidence(request.user, evidence)
    except REFUSED as exc:
        status, message, _ = _refused(exc)
        return _render_detail(
            request, services.rfc_or_404(request.user, uuid), status=status, action_error=message
        )
    messages.success(request, gettext("%(name)s removed.") % {"name": evidence.original_name})
    return redirect(f"{reverse('releases:detail', args=[evidence.rfc.uuid])}#evidence")


def _file_response(evidence: Evidence, *, inline: bool) -> FileResponse:
    try:
        handle = open(uploads.path_of("evidence", evidence.stored_name), "rb")  # noqa: SIM115 (FileResponse closes)
    except (OSError, ValueError):
        raise Http404("The stored file is missing.") from None
    response = FileResponse(
        handle, as_attachment=not inline, filename=evidence.original_name, content_type=evidence.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Nothing in an evidence file may run, even if a browser were fooled into rendering it.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def evidence_download(request, uuid, evidence_uuid):
    return _file_response(_evidence_or_404(request, uuid, evidence_uuid), inline=False)


@login_required
@require_GET
def evidence_preview(request, uuid, evidence_uuid):
    """Only PNG and JPEG, whose type was proven by content at upload, are shown inline."""
    evidence = _evidence_or_404(request, uuid, evidence_uuid)
    if not evidence.is_image:
        raise Http404("Only images have a preview.")
    return _file_response(evidence, inline=True)


def _cited_evidence(rfc: Rfc, values: list[str]) -> tuple[list[Evidence], bool]:
    """The RFC's current evidence a sign-off cites (by UUID), and whether any value named none."""
    wanted = set()
    for value in values[:50]:
        try:
            wanted.add(UUID(str(value)))
        except ValueError:
            return [], True
    found = list(Evidence.objects.filter(rfc=rfc, uuid__in=wanted, superseded_by__isnull=True))
    return found, len(found) != len(wanted)


@login_required
@require_POST
def signoff(request, uuid):
    rfc = services.rfc_or_404(request.user, uuid)
    form = SignoffForm(request.POST)
    try:
        site = services.target_site(request.user, rfc, request.POST.get("site", ""))
    except ValidationError:
        site = None
    files = request.FILES.getlist("files")
    cited, unknown = _cited_evidence(rfc, request.POST.getlist("cite"))
    if not form.is_valid() or site is None or unknown:
        if site is None:
            form.add_error("site", gettext("Choose one of the RFC's sites."))
        if unknown:
            form.add_error(None, gettext("Cite only evidence attached to this RFC."))
        return _render_detail(request, rfc, status=400, signoff_form=form)
    try:
        wf.sign_off_uat(request.user, rfc, site, form.cleaned_data["comment"], files, cite=cited)
    except REFUSED as exc:
        status, message, _ = _refused(exc)
        form.add_error(None, message)
        return _render_detail(
            request, services.rfc_or_404(request.user, uuid), status=status, signoff_form=form
        )
    messages.success(
        request, gettext("UAT of %(rfc)s signed off for %(site)s.") % {"rfc": rfc.number, "site": site.code}
    )
    return redirect(f"{reverse('releases:detail', args=[rfc.uuid])}#uat")


# --- Scheduling ---------------------------------------------------------------------
def _schedule_context(request, rfc: Rfc, form: ScheduleForm) -> dict:
    site = form.site_choice()
    duration = form.duration_choice()
    context = {"rfc": rfc, "form": form, "site": site, "duration": duration}
    if site is not None:
        environment = scheduling.prod_of(site)
        rules = rules_for(environment)
        context.update(
            {
                "environment": environment,
                "rules": rules,
                "zone": site.zone,
                "slots": [
                    (
                        slot,
                        f"{slot.start.astimezone(site.zone):%a %-d %b}",
                        f"{slot.start.astimezone(site.zone):%H:%M}–{slot.end.astimezone(site.zone):%H:%M %Z}",
                    )
                    for slot in scheduling.slots(rfc, site, clock.now() + scheduling.BOOKING_LEAD, duration)
                ],
            }
        )
    return context


@login_required
@require_http_methods(["GET", "POST"])
def rfc_schedule(request, uuid):
    """Book the PROD start: the next allowed slots are offered; a blocked time is refused with every reason."""
    rfc = services.rfc_or_404(request.user, uuid)
    sites = [s for s in services.rfc_sites(rfc) if scheduling.may_schedule(request.user, s)]
    if not sites:
        raise PermissionDenied(gettext("Only a release manager or an admin of the RFC's sites schedules it."))
    if rfc.state != RfcState.APPROVED:
        messages.error(
            request,
            gettext("%(rfc)s is %(state)s; only an approved RFC is scheduled.")
            % {"rfc": rfc.number, "state": rfc.get_state_display().lower()},
        )
        return redirect("releases:detail", rfc.uuid)
    booked = scheduling.booked_sites(rfc)
    form = ScheduleForm(
        request.POST or request.GET or None,
        rfc=rfc,
        user=request.user,
        sites=[s for s in sites if s.pk not in booked],
    )
    status, refusal = 200, None
    if request.method == "POST" and form.is_valid():
        site = form.cleaned_data["site"]
        try:
            start = form.start_utc()
            wf.schedule(
                request.user,
                rfc,
                site,
                start,
                form.cleaned_data["duration"],
                handover_override=form.cleaned_data["handover_override"],
                acknowledge_conflicts=form.cleaned_data["acknowledge_conflicts"],
            )
        except REFUSED as exc:
            status, message, failed = _refused(exc)
            reasons = [g["reason"] for g in failed] if failed else []
            refusal = {
                "message": message.partition(": ")[0] + ":" if reasons else message,
                "reasons": reasons,
                "conflicts": getattr(exc, "rule", "") == conflicts.RULE,
            }
        else:
            messages.success(
                request, gettext("%(rfc)s booked for %(site)s PROD.") % {"rfc": rfc.number, "site": site.code}
            )
            return redirect("releases:detail", rfc.uuid)
    elif request.method == "POST":
        status = 400
    template = "releases/schedule.html#slots" if request.htmx else "releases/schedule.html"
    context = _schedule_context(request, rfc, form)
    context["refusal"] = refusal
    return render(request, template, context, status=status)


@login_required
@require_POST
def waive_gate(request, uuid):
    """A release manager waives a failing gate for this RFC's artifact, re-entering the password."""
    rfc = services.rfc_or_404(request.user, uuid)
    gate = request.POST.get("gate", "")
    try:
        waivers.waive(
            request.user,
            rfc,
            gate,
            request.POST.get("reason", ""),
            request.POST.get("password", ""),
            otp_code=request.POST.get("otp_code", ""),
        )
    except REFUSED as exc:
        status, message, _ = _refused(exc)
        return _render_detail(
            request,
            services.rfc_or_404(request.user, uuid),
            status=status,
            waive_error=message,
            waive_gate=gate,
        )
    messages.success(
        request, gettext("%(gate)s waived for %(rfc)s.") % {"gate": gettext(gate), "rfc": rfc.number}
    )
    return redirect(f"{reverse('releases:detail', args=[rfc.uuid])}#readiness")


@login_required
@require_POST
def accept_staging_gaps(request, uuid):
    """A business owner accepts the RFC's staging gaps for its artifact, re-entering the password."""
    rfc = services.rfc_or_404(request.user, uuid)
    try:
        fidelity.accept(
            request.user,
            rfc,
            request.POST.get("reason", ""),
            request.POST.get("password", ""),
            otp_code=request.POST.get("otp_code", ""),
        )
    except REFUSED as exc:
        status, message, _ = _refused(exc)
        return _render_detail(
            request, services.rfc_or_404(request.user, uuid), status=status, accept_error=message
        )
    messages.success(request, gettext("The staging risk of %(rfc)s is accepted.") % {"rfc": rfc.number})
    return redirect(f"{reverse('releases:detail', args=[rfc.uuid])}#readiness")


@login_required
@require_POST
def revoke_waiver(request, uuid, waiver_id: int):
    rfc = services.rfc_or_404(request.user, uuid)
    waiver = waivers.waivers_of(rfc).filter(pk=waiver_id).first()
    if waiver is None:
        raise Http404("No such waiver on this RFC")
    try:
        waivers.revoke(request.user, waiver, request.POST.get("reason", ""))
    except REFUSED as exc:
        status, message, _ = _refused(exc)
        return _render_detail(
            request, services.rfc_or_404(request.user, uuid), status=status, waive_error=message
        )
    messages.success(request, gettext("The waiver of %(gate)s is revoked.") % {"gate": gettext(waiver.gate)})
    return redirect(f"{reverse('releases:detail', args=[rfc.uuid])}#readiness")


@login_required
@require_POST
def request_check(request, uuid):
    """Run the idempotency check or the rollback rehearsal against a copy of a site's UAT (or DEV)."""
    from deployments import checks

    rfc = services.rfc_or_404(request.user, uuid)
    try:
        site = services.target_site(request.user, rfc, request.POST.get("site", ""))
    except ValidationError:
        raise Http404("No such site on this RFC") from None
    try:
        checks.request_check(request.user, rfc, request.POST.get("kind", ""), site)
    except REFUSED as exc:
        _, message, _ = _refused(exc)
        messages.error(request, message)
    else:
        messages.success(
            request, gettext("Check queued: a worker runs it against a scratch copy of the proving tier.")
        )
    return redirect(f"{reverse('releases:detail', args=[rfc.uuid])}#evidence-computed")
