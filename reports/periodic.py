"""The periodic review report (issue 17 item 5; EU GMP Annex 11 §11: computerised systems are
periodically evaluated to confirm they remain in a valid state).

`create()` freezes, for a period and the sites a reviewer chooses, everything the evaluation rests on:
the dashboard's figures, incidents (rollbacks, failed rollbacks, failures), deviations (waived gates,
emergency changes, shift-handover overrides), the access review (users, roles, admins, grant changes),
the audit chain's verification, configuration changes, and the follow-ups of post-implementation
reviews. The content and its SHA-256 never change afterwards; the reviewer signs it like an approval
(password re-entered, a second factor where enrolled; a refusal is audited), and the PDF prints the
content with the signature.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from approvals import services as approvals
from audit.actions import label as action_label
from audit.models import AuditEvent
from audit.services import record
from core import clock
from core.errors import StateConflict
from core.version import __version__
from deployments.models import Deployment
from deployments.states import FAILED_ENDS
from environments import access
from environments.models import Site
from releases.models import GateWaiver, Impact, Rfc
from reports import figures
from reports.models import PeriodicReview
from reports.oversight import ROLE_CHANGES, chain_status
from workflow import metrics
from workflow.models import Review

# Stored in English with the signature (and in the audit trail); translated where it is printed.
MEANING = gettext_noop(
    "Reviewed: the system remains in a validated state, with the follow-ups named in the conclusion"
)
ROWS = 200  # per section; the count says when there were more
# Operations, not configuration: the trail's other events.
OPERATIONAL = (
    "releases.",
    "approvals.signature",
    "approvals.approval",
    "discussion.",
    "accounts.login",
    "accounts.logged_out",
    "accounts.logout",
    "accounts.token.",
    "accounts.mfa.",
    "accounts.lockout",
    "accounts.session",
    "accounts.review",
    "notify.",
    "audit.",
    "reports.",
    "environments.refresh.",
    "environments.environment.deployed",
    "environments.feed_token.",
    "hooks.delivery",
)


def _may_review(user) -> bool:
    return access.can(user, "read_audit")


def _text(value) -> str:
    return "" if value is None else str(value)


def _utc(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def canonical(content: dict) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build(user, sites: list[Site], period: metrics.Period) -> dict:
    """The review's content: plain JSON (strings and numbers), in a fixed number of queries."""
    site_ids = [s.pk for s in sites]
    board = metrics.dashboard(sites, period)
    start, end = period.start, period.end
    in_period = {"finished_at__gte": start, "finished_at__lt": end}
    rfcs_at_sites = Impact.objects.filter(site_id__in=site_ids).values("rfc")

    incidents = Deployment.objects.filter(
        environment__site_id__in=site_ids, state__in=FAILED_ENDS, **in_period
    ).select_related("rfc", "environment__site")
    incident_rows = [
        {
            "rfc": d.rfc.number,
            "title": d.rfc.title,
            "site": d.environment.site.code,
            "tier": d.environment.tier,
            "state": d.get_state_display(),
            "ended": _utc(d.finished_at),
            "outcome": d.outcome[:300],
        }
        for d in incidents.order_by("finished_at", "pk")[:ROWS]
    ]
    waivers = GateWaiver.objects.filter(
        waived_at__gte=start, waived_at__lt=end, rfc__in=rfcs_at_sites
    ).select_related("rfc", "waived_by")
    emergencies = Rfc.objects.filter(
        emergency=True, submitted_at__gte=start, submitted_at__lt=end, pk__in=rfcs_at_sites
    )
    overrides = Deployment.objects.filter(
        environment__site_id__in=site_ids,
        handover_override=True,
        scheduled_start__gte=start,
        scheduled_start__lt=end,
    ).select_related("rfc", "environment__site", "scheduled_by")

    people = list(access_users())
    held = access.grants(people)
    codes = dict(Site.objects.values_list("pk", "code"))
    users = []
    for person in people:
        roles = [
            f"{g.role.label} @ {'every site' if g.site_id is None else codes.get(g.site_id, '?')} ({g.via})"
            for g in held[person.pk]
        ]
        if person.is_superuser:
            roles.append("Admin @ every site (superuser)")
        users.append(
            {
                "username": person.get_username(),
                "name": person.get_full_name(),
                "active": person.is_active,
                "last_login": _utc(person.last_login),
                "roles": roles,
            }
        )
    trail = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    counts = trail.aggregate(
        role_changes=Count("pk", filter=Q(action__in=ROLE_CHANGES)),
        failed_logins=Count("pk", filter=Q(action="accounts.login.failed")),
        verifications=Count("pk", filter=Q(action="audit.chain.verified")),
        broken=Count("pk", filter=Q(action="audit.chain.verified", after__ok=False)),
    )
    operational = Q()
    for prefix in OPERATIONAL:
        operational |= Q(action__startswith=prefix)
    configuration = [
        {"action": row["action"], "label": action_label(row["action"]), "count": row["n"]}
        for row in trail.exclude(operational)
        .values("action")
        .annotate(n=Count("pk"))
        .order_by("-n", "action")[:60]
    ]
    chain = chain_status()
    follow_ups = Review.objects.filter(rfc__in=rfcs_at_sites).filter(
        Q(completed_at__isnull=True, opened_at__lt=end)
        | (Q(completed_at__gte=start, completed_at__lt=end) & ~Q(follow_ups=""))
    )
    return {
        "title": "Periodic review",
        "period": {
            "since": f"{period.since:%Y-%m-%d}",
            "until": f"{period.until:%Y-%m-%d}",
            "zone": str(period.zone),
        },
        "sites": [s.code for s in sites],
        "generated_at": _utc(clock.now()),
        "generated_by": user.get_username(),
        "portal_version": __version__,
        "figures": [
            {"label": f["label"], "value": f["value"], "detail": f["detail"]}
            for f in figures.key_figures(board, lambda metric: "")
        ],
        "incidents": {"count": incidents.count(), "rows": incident_rows},
        "deviations": {
            "waivers": {
                "count": waivers.count(),
                "rows": [
                    {
                        "rfc": w.rfc.number,
                        "gate": w.gate,
                        "by": w.waived_by_name,
                        "at": _utc(w.waived_at),
                        "reason": w.reason[:300],
                        "revoked": _utc(w.revoked_at),
                    }
                    for w in waivers.order_by("waived_at", "pk")[:ROWS]
                ],
            },
            "emergencies": {
                "count": emergencies.count(),
                "rows": [
                    {
                        "rfc": r.number,
                        "title": r.title,
                        "submitted": _utc(r.submitted_at),
                        "state": r.get_state_display(),
                        "reason": r.emergency_reason[:300],
                    }
                    for r in emergencies.order_by("submitted_at", "pk")[:ROWS]
                ],
            },
            "handover_overrides": {
                "count": overrides.count(),
                "rows": [
                    {
                        "rfc": d.rfc.number,
                        "site": d.environment.site.code,
                        "start": _utc(d.scheduled_start),
                        "by": d.scheduled_by.get_username(),
                        "state": d.get_state_display(),
                    }
                    for d in overrides.order_by("scheduled_start", "pk")[:ROWS]
                ],
            },
        },
        "access": {
            "users": users,
            "admins": [
                u["username"]
                for u in users
                if u["active"] and any(r.startswith("Admin @") for r in u["roles"])
            ],
            "role_changes": counts["role_changes"],
            "failed_logins": counts["failed_logins"],
        },
        "audit_chain": {
            "state": chain.state,
            "last_verified": _utc(chain.verified_at),
            "verified_events": chain.verified_count,
            "problem": chain.problem,
            "head": chain.head_seq,
            "head_hash": chain.head_hash,
            "published_head": (chain.published or {}).get("seq"),
            "verifications_in_period": counts["verifications"],
            "broken_verifications_in_period": counts["broken"],
        },
        "configuration": configuration,
        "follow_ups": [
            {
                "rfc": r.rfc.number,
                "title": r.rfc.title,
                "review": "open" if r.completed_at is None else f"completed {_utc(r.completed_at)}",
                "follow_ups": r.follow_ups[:500],
            }
            for r in follow_ups.select_related("rfc").order_by("opened_at", "pk")[:ROWS]
        ],
    }


def access_users():
    from django.contrib.auth.models import User

    return User.objects.order_by("username")


def create(user, since: str | date | None, until: str | date | None, site_code: str = "") -> PeriodicReview:
    if not _may_review(user):
        raise PermissionDenied(_("Only auditors and admins draw up a periodic review."))
    visible = list(access.visible_sites(user).order_by("code"))
    sites = visible
    if site_code:
        sites = [s for s in visible if s.code == site_code]
        if not sites:
            raise ValidationError({"site": _("Choose one of your sites.")})
    if not sites:
        raise ValidationError({"site": _("You see no site to review.")})
    period = metrics.period(since, until, metrics.ZONE_UTC)
    if period.until > clock.now().date():
        raise ValidationError({"until": _("A review covers days that have passed.")})
    # The content is a frozen record with its hash: written in English whoever draws it up (its
    # labels are translated where the review is shown and printed).
    with translation.override(None):
        content = build(user, sites, period)
    review = PeriodicReview.objects.create(
        since=period.since,
        until=period.until,
        sites=[s.code for s in sites],
        content=content,
        content_hash=hashlib.sha256(canonical(content)).hexdigest(),
        created_by=user,
    )
    record(
        "reports.periodic_review.created",
        review,
        actor=user,
        after={
            "since": content["period"]["since"],
            "until": content["period"]["until"],
            "sites": review.sites,
            "content_hash": review.content_hash,
        },
    )
    return review


class WrongPassword(ValidationError):
    """The password (or code) re-entered to sign did not match."""


def sign(user, review: PeriodicReview, conclusion: str, password: str, otp_code: str = "") -> PeriodicReview:
    """The reviewer's electronic signature: who, when, the meaning, bound to the content's SHA-256."""
    if not _may_review(user):
        raise PermissionDenied(_("Only auditors and admins sign a periodic review."))
    conclusion = (conclusion or "").strip()
    if not conclusion:
        raise ValidationError(
            {"conclusion": _("Write the review's conclusion: what you found and what follows.")}
        )
    if len(conclusion) > 5000:
        raise ValidationError({"conclusion": _("A conclusion has at most 5000 characters.")})
    approvals.require_password(
        user,
        password,
        review,
        "reports.periodic_review.signature_refused",
        {"content_hash": review.content_hash},
        lambda why: WrongPassword({"password": _("%(why)s: the review was not signed.") % {"why": why}}),
        otp_code=otp_code,
        code_error=lambda message: WrongPassword(
            {"otp_code": _("%(message)s The review was not signed.") % {"message": message}}
        ),
    )
    with transaction.atomic():
        locked = PeriodicReview.objects.select_for_update().get(pk=review.pk)
        if locked.signed:
            raise StateConflict(_("This review is signed already."))
        if hashlib.sha256(canonical(locked.content)).hexdigest() != locked.content_hash:
            raise StateConflict(_("The review's content no longer matches its hash: it cannot be signed."))
        locked.signed_by, locked.signed_at = user, clock.now()
        locked.printed_name = user.get_full_name() or user.get_username()
        locked.meaning, locked.conclusion = MEANING, conclusion
        locked.save(update_fields=["signed_by", "signed_at", "printed_name", "meaning", "conclusion"])
        record(
            "reports.periodic_review.signed",
            locked,
            actor=user,
            reason=conclusion[:1000],
            after={"content_hash": locked.content_hash, "meaning": MEANING},
        )
    return locked


# --- The PDF ------------------------------------------------------------------------------------------
# (title, part of content["deviations"], column headers, row keys, column widths as page fractions)
DEVIATION_TABLES = (
    (
        gettext_lazy("Deviations: waived gates"),
        "waivers",
        [
            "RFC",
            gettext_lazy("Gate"),
            gettext_lazy("By"),
            gettext_lazy("When"),
            gettext_lazy("Reason"),
            gettext_lazy("Revoked"),
        ],
        ["rfc", "gate", "by", "at", "reason", "revoked"],
        [0.14, 0.16, 0.14, 0.17, 0.25, 0.14],
    ),
    (
        gettext_lazy("Deviations: emergency changes"),
        "emergencies",
        ["RFC", gettext_lazy("Title"), gettext_lazy("Submitted"), gettext_lazy("State"), gettext_lazy("Why")],
        ["rfc", "title", "submitted", "state", "reason"],
        [0.14, 0.26, 0.18, 0.12, 0.3],
    ),
    (
        gettext_lazy("Deviations: shift-handover overrides"),
        "handover_overrides",
        [
            "RFC",
            gettext_lazy("Site"),
            gettext_lazy("Start"),
            gettext_lazy("Booked by"),
            gettext_lazy("State"),
        ],
        ["rfc", "site", "start", "by", "state"],
        [0.2, 0.12, 0.26, 0.2, 0.22],
    ),
)


def pdf(review: PeriodicReview) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    from reports.pdf import page_width, render, styles
    from reports.pdf import text as t

    s = styles()
    c = review.content
    width = page_width()

    def table(header: list[str], rows: list[list], widths: list[float] | None = None):
        data = [[Paragraph(f"<b>{t(h)}</b>", s["small"]) for h in header]]
        data += [[Paragraph(t(cell), s["small"]) for cell in row] for row in rows]
        if len(data) == 1:
            data.append([Paragraph(t(_("None.")), s["small"])] + [""] * (len(header) - 1))
        cols = [w * width for w in widths] if widths else None
        tbl = Table(data, colWidths=cols, repeatRows=1)
        tbl.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9aa5b1")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return tbl

    def section(title, count: int | None = None):
        suffix = f" ({count})" if count is not None else ""
        return [Spacer(1, 3 * mm), Paragraph(t(f"{title}{suffix}"), s["Heading2"])]

    def label(stored: str) -> str:
        """A label the content keeps in English (a figure's, a state's), in the reader's language."""
        return _(stored) if stored else stored

    story = [
        Paragraph(t(_("Periodic review of Plant Change Control")), s["Title"]),
        Paragraph(
            t(
                _(
                    "Period %(since)s to %(until)s (%(zone)s), sites %(sites)s. Generated %(generated_at)s by "
                    "%(generated_by)s with portal v%(version)s. Content SHA-256 %(hash)s."
                )
                % {
                    "since": c["period"]["since"],
                    "until": c["period"]["until"],
                    "zone": c["period"]["zone"],
                    "sites": ", ".join(c["sites"]),
                    "generated_at": c["generated_at"],
                    "generated_by": c["generated_by"],
                    "version": c["portal_version"],
                    "hash": review.content_hash,
                }
            ),
            s["small"],
        ),
    ]
    story += section(_("How change went"))
    story.append(
        table(
            [_("Figure"), _("Value"), _("Detail")],
            [[label(f["label"]), f["value"], f["detail"]] for f in c["figures"]],
            [0.28, 0.17, 0.55],
        )
    )
    inc = c["incidents"]
    story += section(_("Incidents: rollbacks, failed rollbacks and failures"), inc["count"])
    story.append(
        table(
            ["RFC", _("Site"), _("Tier"), _("Outcome"), _("Ended")],
            [
                [r["rfc"] + " " + r["title"], r["site"], r["tier"], label(r["state"]), r["ended"]]
                for r in inc["rows"]
            ],
            [0.42, 0.1, 0.1, 0.16, 0.22],
        )
    )
    dev = c["deviations"]
    for title, part, header, keys, widths in DEVIATION_TABLES:
        story += section(title, dev[part]["count"])
        rows = [[label(row[k]) if k == "state" else row[k] for k in keys] for row in dev[part]["rows"]]
        story.append(table(header, rows, widths))
    acc = c["access"]
    story += section(_("Access review"), len(acc["users"]))
    story.append(
        Paragraph(
            t(
                _(
                    "Admins: %(admins)s. Role grants changed in the period: %(role_changes)s. "
                    "Failed sign-ins: %(failed_logins)s."
                )
                % {
                    "admins": ", ".join(acc["admins"]) or _("none"),
                    "role_changes": acc["role_changes"],
                    "failed_logins": acc["failed_logins"],
                }
            ),
            s["small"],
        )
    )
    story.append(
        table(
            [_("User"), _("Name"), _("Active"), _("Last sign-in"), _("Roles")],
            [
                [
                    u["username"],
                    u["name"],
                    _("yes") if u["active"] else _("no"),
                    u["last_login"],
                    "; ".join(u["roles"]) or _("none"),
                ]
                for u in acc["users"]
            ],
            [0.15, 0.17, 0.08, 0.18, 0.42],
        )
    )
    ch = c["audit_chain"]
    story += section(_("Audit trail"))
    state = {"intact": _("intact"), "broken": _("BROKEN"), "unverified": _("not verified")}.get(
        ch["state"], ch["state"]
    )
    story.append(
        Paragraph(
            t(
                _(
                    "Chain %(state)s; last verified %(last_verified)s over %(events)s events%(problem)s. "
                    "Head at generation: event %(head)s; last published head: event %(published)s. "
                    "Verifications in the period: %(verifications)s, of which broken: %(broken)s."
                )
                % {
                    "state": state,
                    "last_verified": ch["last_verified"] or _("never"),
                    "events": ch["verified_events"],
                    "problem": (": " + ch["problem"]) if ch["problem"] else "",
                    "head": ch["head"],
                    "published": ch["published_head"] if ch["published_head"] is not None else _("none"),
                    "verifications": ch["verifications_in_period"],
                    "broken": ch["broken_verifications_in_period"],
                }
            ),
            s["small"],
        )
    )
    story += section(_("Configuration changes"), sum(r["count"] for r in c["configuration"]))
    story.append(
        table(
            [_("Change"), _("Event"), _("Count")],
            [[label(r["label"]), r["action"], r["count"]] for r in c["configuration"]],
            [0.5, 0.38, 0.12],
        )
    )

    def review_state(stored: str) -> str:
        if stored == "open":
            return _("open")
        if stored.startswith("completed "):
            return _("completed %(when)s") % {"when": stored.removeprefix("completed ")}
        return stored

    story += section(_("Follow-ups from post-implementation reviews"), len(c["follow_ups"]))
    story.append(
        table(
            ["RFC", _("Review"), _("Follow-ups")],
            [
                [f["rfc"] + " " + f["title"], review_state(f["review"]), f["follow_ups"]]
                for f in c["follow_ups"]
            ],
            [0.35, 0.2, 0.45],
        )
    )
    story += section(_("Signature"))
    if review.signed:
        story.append(
            Paragraph(
                t(
                    _(
                        "Signed electronically by %(name)s (%(username)s) on %(when)s UTC. Meaning: %(meaning)s. "
                        "Bound to content SHA-256 %(hash)s."
                    )
                    % {
                        "name": review.printed_name,
                        "username": review.signed_by.get_username(),
                        "when": f"{review.signed_at:%Y-%m-%d %H:%M}",
                        "meaning": label(review.meaning),
                        "hash": review.content_hash,
                    }
                ),
                s["BodyText"],
            )
        )
        story.append(
            Paragraph(t(_("Conclusion: %(conclusion)s") % {"conclusion": review.conclusion}), s["BodyText"])
        )
    else:
        story.append(Paragraph(t(_("DRAFT — not signed yet.")), s["BodyText"]))
    return render(
        _("Periodic review %(since)s – %(until)s")
        % {"since": c["period"]["since"], "until": c["period"]["until"]},
        story,
    )
