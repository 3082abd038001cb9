"""The evidence pack: one complete, self-contained record per RFC for an inspector (PRODUCT.md C2).

`pack_data` gathers the RFC, its release, impact, gates, evidence with hashes, UAT sign-offs, every
electronic signature (21 CFR Part 11 §11.50: printed name, time with zone, meaning), deployments
with their journal, computed checks and the RFC's audit events, in a fixed number of queries.
`render_pdf` lays the same dict out with reportlab; its fonts come from the reportlab package and
are embedded, so the PDF renders without network access and looks the same on every machine.
The JSON form is the same dict (`render_json`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import UTC, datetime
from io import BytesIO
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch
from django.utils.translation import gettext

from approvals import services as approvals
from audit.models import AuditEvent
from core import clock
from core.roles import Role
from core.version import __version__
from deployments.models import CheckRun, Deployment, DeploymentStep
from releases import gates, risk
from releases.models import Evidence, GateWaiver, Impact, Rfc, UatSignoff

# --- The data -------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    """Wall-clock time at the site with its abbreviation, e.g. "2026-11-27 08:12 CET"."""
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M %Z}" if value else None


def _person(user) -> dict | None:
    if user is None:
        return None
    return {"username": user.get_username(), "full_name": user.get_full_name()}


def _load(rfc: Rfc) -> Rfc:
    return (
        Rfc.objects.select_related("release", "author")
        .prefetch_related(
            Prefetch("impacts", queryset=Impact.objects.select_related("site")),
            Prefetch("evidence", queryset=Evidence.objects.select_related("uploaded_by", "superseded_by")),
            Prefetch(
                "signoffs",
                queryset=UatSignoff.objects.select_related("site", "signed_by", "release").prefetch_related(
                    "evidence"
                ),
            ),
            Prefetch(
                "deployments",
                queryset=Deployment.objects.order_by("scheduled_start", "id")
                .select_related("environment__site", "scheduled_by", "rollback_requested_by")
                .prefetch_related(Prefetch("steps", queryset=DeploymentStep.objects.order_by("order", "id"))),
            ),
            Prefetch(
                "checks",
                queryset=CheckRun.objects.order_by("created_at", "id").select_related(
                    "environment__site", "release", "requested_by"
                ),
            ),
            Prefetch(
                "waivers",
                queryset=GateWaiver.objects.order_by("waived_at", "id").select_related(
                    "waived_by", "revoked_by"
                ),
            ),
        )
        .get(pk=rfc.pk)
    )


def _signature(sig, zone: ZoneInfo) -> dict:
    return {
        "printed_name": sig.printed_name,
        "signer": sig.signer.get_username(),
        "meaning": sig.meaning,
        "decision": sig.decision,
        "signed_at_utc": _utc(sig.signed_at),
        "signed_at_local": _local(sig.signed_at, zone),
        "timezone": zone.key,
        "reason": sig.reason,
        "via": sig.via,
        "on_behalf_of": _person(sig.on_behalf_of),
        "content_hash": sig.content_hash,
        "voided": sig.voided_at is not None,
        "voided_at_utc": _utc(sig.voided_at),
        "void_reason": sig.void_reason,
    }


def _rounds(rfc: Rfc) -> list[dict]:
    rounds = []
    for rnd in sorted(approvals.rounds_of(rfc), key=lambda r: r.number):
        steps = []
        for step in rnd.step_list:
            steps.append(
                {
                    "order": step.order,
                    "label": step.label,
                    "rule": step.rule,
                    "note": step.note,
                    "state": step.state,
                    "activated_at_utc": _utc(step.activated_at),
                    "completed_at_utc": _utc(step.completed_at),
                    "approvals": [
                        {
                            "role": Role(approval.role).label,
                            "site": approval.site.code,
                            "state": approval.state,
                            "decided_at_utc": _utc(approval.decided_at),
                            "signatures": [
                                _signature(sig, approval.site.zone) for sig in approval.signature_list
                            ],
                        }
                        for approval in step.approval_list
                    ],
                }
            )
        rounds.append(
            {
                "number": rnd.number,
                "purpose": rnd.purpose,
                "state": rnd.state,
                "change_class": rnd.change_class,
                "high_risk": rnd.high_risk,
                "content_hash": rnd.content_hash,
                "created_at_utc": _utc(rnd.created_at),
                "closed_at_utc": _utc(rnd.closed_at),
                "due_at_utc": _utc(rnd.due_at),
                "steps": steps,
            }
        )
    return rounds


def _deployment(dep: Deployment) -> dict:
    zone = dep.environment.site.zone
    return {
        "uuid": str(dep.uuid),
        "environment": str(dep.environment),
        "site": dep.environment.site.code,
        "tier": dep.environment.tier,
        "state": dep.state,
        "state_label": dep.get_state_display(),
        "emergency": dep.emergency,
        "handover_override": dep.handover_override,
        "scheduled_by": _person(dep.scheduled_by),
        "scheduled_start_utc": _utc(dep.scheduled_start),
        "scheduled_start_local": _local(dep.scheduled_start, zone),
        "scheduled_end_utc": _utc(dep.scheduled_end),
        "duration_minutes": dep.duration_minutes,
        "started_at_utc": _utc(dep.started_at),
        "started_at_local": _local(dep.started_at, zone),
        "finished_at_utc": _utc(dep.finished_at),
        "finished_at_local": _local(dep.finished_at, zone),
        "outcome": dep.outcome,
        "cancel_reason": dep.cancel_reason,
        "rollback_requested_by": _person(dep.rollback_requested_by),
        # As they stood when the worker started (C5), and the environment before and after (E8).
        "gates_at_start": dep.gates_at_start,
        "fingerprint_before": dep.fingerprint_before,
        "fingerprint_after": dep.fingerprint_after,
        "rpo": dep.rpo,
        "steps": [
            {
                "order": step.order,
                "name": step.name,
                "label": step.label,
                "phase": step.phase,
                "state": step.state,
                "adapter": step.adapter,
                "started_at_utc": _utc(step.started_at),
                "finished_at_utc": _utc(step.finished_at),
                "duration_seconds": step.duration_seconds,
                "worker": step.worker,
                "output": step.output,
            }
            for step in dep.steps.all()
        ],
    }


def pack_data(rfc: Rfc) -> dict:
    """Everything an inspector needs for one RFC, JSON-serialisable, in a bounded number of queries."""
    generated_at = clock.now()
    rfc = _load(rfc)
    release = rfc.release
    evidence = list(rfc.evidence.all())
    # Every RFC-related event (evidence, sign-off, approvals, deployments, checks) carries the RFC number.
    events = (
        AuditEvent.objects.filter(object_id=rfc.number)
        .order_by("seq")
        .values(
            "seq",
            "occurred_at",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "site_code",
            "reason",
            "before",
            "after",
            "hash",
        )
    )
    return {
        "format": "plant-change-control/evidence-pack",
        "format_version": 1,
        "portal_version": __version__,
        "generated_at": _utc(generated_at),
        "current_content_hash": approvals.content_hash(rfc),
        "rfc": {
            "uuid": str(rfc.uuid),
            "number": rfc.number,
            "title": rfc.title,
            "description": rfc.description,
            "state": rfc.state,
            "state_label": rfc.get_state_display(),
            "change_class": rfc.change_class,
            "change_class_label": rfc.get_change_class_display(),
            "high_risk": rfc.is_high_risk,
            "high_risk_declared": rfc.high_risk,
            "risk": {
                "score": rfc.risk_score,
                "level": rfc.risk_level,
                "answers": risk.rows(rfc),
            },
            "emergency": rfc.emergency,
            "emergency_reason": rfc.emergency_reason,
            "estimated_downtime_minutes": rfc.estimated_downtime_minutes,
            "retraining_note": rfc.retraining_note,
            "rollback_plan": rfc.rollback_plan,
            "requested_timing": rfc.requested_timing,
            "author": _person(rfc.author),
            "created_at_utc": _utc(rfc.created_at),
            "submitted_at_utc": _utc(rfc.submitted_at),
        },
        "release": {
            "product": release.product,
            "version": release.version,
            "artifact_name": release.artifact_name,
            "artifact_url": release.artifact_url,
            "artifact_size": release.artifact_size,
            "artifact_sha256": release.artifact_sha256,
            "migration_sql": release.migration_sql,
            "undo_sql": release.undo_sql,
        },
        "impacts": [
            {
                "site": i.site.code,
                "site_name": i.site.name,
                "timezone": i.site.timezone,
                "lines": i.lines,
                "modules": i.modules,
                "interfaces": i.interfaces,
                "notes": i.notes,
            }
            for i in rfc.impacts.all()
        ],
        "gates": [g.as_dict() for g in gates.evaluate(rfc, "deploy")],
        "evidence": [
            {
                "uuid": str(item.uuid),
                "name": item.original_name,
                "kind": item.kind,
                "description": item.description,
                "content_type": item.content_type,
                "size": item.size,
                "sha256": item.sha256,
                "uploaded_by": _person(item.uploaded_by),
                "uploaded_at_utc": _utc(item.uploaded_at),
                "superseded_by": (
                    {
                        "uuid": str(item.superseded_by.uuid),
                        "name": item.superseded_by.original_name,
                        "sha256": item.superseded_by.sha256,
                    }
                    if item.superseded_by
                    else None
                ),
            }
            for item in evidence
        ],
        "uat_signoffs": [
            {
                "site": s.site.code,
                "release": str(s.release),
                "signed_by": _person(s.signed_by),
                "signed_at_utc": _utc(s.signed_at),
                "signed_at_local": _local(s.signed_at, s.site.zone),
                "comment": s.comment,
                "evidence_sha256": [e.sha256 for e in s.evidence.all()],
                "voided": s.voided_at is not None,
                "voided_at_utc": _utc(s.voided_at),
                "void_reason": s.void_reason,
            }
            for s in rfc.signoffs.all()
        ],
        "approval_rounds": _rounds(rfc),
        "deployments": [_deployment(dep) for dep in rfc.deployments.all()],
        "checks": [
            {
                "kind": c.kind,
                "kind_label": c.get_kind_display(),
                "state": c.state,
                "summary": c.summary,
                "environment": str(c.environment),
                "release": str(c.release),
                "artifact_sha256": c.artifact_sha256,
                "requested_by": _person(c.requested_by),
                "started_at_utc": _utc(c.started_at),
                "finished_at_utc": _utc(c.finished_at),
                # The replay's and the parallel run's report: what the page shows, per key and row.
                **({"result": c.result} if c.kind in ("replay", "parallel") else {}),
            }
            for c in rfc.checks.all()
        ],
        "waivers": [
            {
                "gate": w.gate,
                "waived_by": _person(w.waived_by),
                "waived_at_utc": _utc(w.waived_at),
                "reason": w.reason,
                "failing_reason": w.failing_reason,
                "artifact_sha256": w.artifact_sha256,
                "counts": w.revoked_at is None and w.artifact_sha256 == release.artifact_sha256,
                "revoked_by": _person(w.revoked_by),
                "revoked_at_utc": _utc(w.revoked_at),
                "revoke_reason": w.revoke_reason,
            }
            for w in rfc.waivers.all()
        ],
        "audit_events": [
            {
                "seq": e["seq"],
                "occurred_at_utc": _utc(e["occurred_at"]),
                "actor": e["actor_name"],
                "action": e["action"],
                "object_type": e["object_type"],
                "object_id": e["object_id"],
                "site": e["site_code"],
                "reason": e["reason"],
                "before": e["before"],
                "after": e["after"],
                "hash": e["hash"],
            }
            for e in events
        ],
    }


def render_json(data: dict) -> bytes:
    return (json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False) + "\n").encode()


# --- The PDF ----------------------------------------------------------------------------------------
SANS, BOLD, ITALIC, MONO = "PackSans", "PackSans-Bold", "PackSans-Italic", "PackMono"
CELL_LIMIT = 1200  # characters of free text per table cell; the JSON pack has the rest
_fonts_lock = threading.Lock()
_fonts_ready = False


def _register_fonts() -> None:
    """Bitstream Vera (TrueType) and the URW Courier clone (Type 1), both shipped inside reportlab.

    The Courier face is registered under its own name: under "Courier" reportlab would treat it as
    the PDF standard font and not embed it.
    """
    global _fonts_ready
    with _fonts_lock:
        if _fonts_ready:
            return
        import reportlab
        from reportlab.lib.fonts import addMapping
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        folder = os.path.join(reportlab.__path__[0], "fonts")
        pdfmetrics.registerFont(TTFont(SANS, os.path.join(folder, "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, os.path.join(folder, "VeraBd.ttf")))
        pdfmetrics.registerFont(TTFont(ITALIC, os.path.join(folder, "VeraIt.ttf")))
        pdfmetrics.registerFont(TTFont("PackSans-BoldItalic", os.path.join(folder, "VeraBI.ttf")))
        addMapping(SANS, 0, 0, SANS)
        addMapping(SANS, 1, 0, BOLD)
        addMapping(SANS, 0, 1, ITALIC)
        addMapping(SANS, 1, 1, "PackSans-BoldItalic")
        face = pdfmetrics.EmbeddedType1Face(
            os.path.join(folder, "com_____.afm"), os.path.join(folder, "com_____.pfb")
        )
        face.name = MONO
        pdfmetrics.registerTypeFace(face)
        pdfmetrics.registerFont(pdfmetrics.Font(MONO, MONO, "WinAnsiEncoding"))
        _fonts_ready = True


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value, limit: int | None = CELL_LIMIT) -> str:
    """User text made safe for a Paragraph: control characters dropped, markup escaped, newlines kept."""
    text = _CONTROL.sub("", "" if value is None else str(value))
    if limit and len(text) > limit:
        text = text[:limit] + gettext(" … (shortened; the JSON pack has the full text)")
    return escape(text).replace("\n", "<br/>")


def _mono_text(value, limit: int | None = None) -> str:
    # The Type 1 mono face covers WinAnsi only; anything else becomes "?" rather than a broken glyph.
    text = _CONTROL.sub("", "" if value is None else str(value)).encode("cp1252", "replace").decode("cp1252")
    if limit and len(text) > limit:
        text = text[:limit] + gettext(" ... (shortened; the JSON pack has the full text)")
    return escape(text).replace("\n", "<br/>").replace("  ", "&nbsp; ")


def _hash(value: str, per_line: int = 32, size: float = 6.3) -> str:
    """A full hash in the mono face, broken into equal lines so it fits a narrow column
    (32 characters at 6.3 pt need 121 pt, about 43 mm)."""
    if not value:
        return "—"
    parts = [escape(value[i : i + per_line]) for i in range(0, len(value), per_line)]
    return f'<font face="{MONO}" size="{size}">{"<br/>".join(parts)}</font>'


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    return f"{datetime.fromisoformat(iso).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _name(person: dict | None) -> str:
    if not person:
        return "—"
    return person["full_name"] or person["username"]


def _size(size) -> str:
    if size is None:
        return "—"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} B" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


class _Styles:
    def __init__(self):
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        base = ParagraphStyle("body", fontName=SANS, fontSize=8.5, leading=11, splitLongWords=True)
        self.body = base
        self.cell = ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5)
        self.cell_head = ParagraphStyle("cellhead", parent=self.cell, fontName=BOLD, textColor=colors.white)
        self.small = ParagraphStyle(
            "small", parent=base, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#555555")
        )
        self.mono = ParagraphStyle("mono", parent=base, fontName=MONO, fontSize=7.5, leading=9.5)
        self.label = ParagraphStyle(
            "label",
            parent=base,
            fontName=BOLD,
            fontSize=8,
            leading=10,
            spaceBefore=5,
            textColor=colors.HexColor("#333333"),
        )
        self.h1 = ParagraphStyle("h1", parent=base, fontName=BOLD, fontSize=16, leading=20, spaceAfter=2)
        self.kicker = ParagraphStyle(
            "kicker", parent=base, fontName=BOLD, fontSize=9, leading=12, textColor=colors.HexColor("#1f4e79")
        )
        self.h2 = ParagraphStyle(
            "h2",
            parent=base,
            fontName=BOLD,
            fontSize=11.5,
            leading=14,
            spaceBefore=12,
            spaceAfter=5,
            textColor=colors.HexColor("#1f4e79"),
        )
        self.h3 = ParagraphStyle(
            "h3", parent=base, fontName=BOLD, fontSize=9, leading=12, spaceBefore=6, spaceAfter=3
        )


class _Builder:
    """Turns the pack dict into platypus flowables."""

    def __init__(self, data: dict, width: float):
        from reportlab.lib import colors

        self.colors = colors
        self.data = data
        self.width = width
        self.s = _Styles()
        self.story: list = []

    # Small pieces
    def p(self, markup: str, style=None):
        from reportlab.platypus import Paragraph

        return Paragraph(markup, style or self.s.cell)

    def keep_room(self, millimetres: float = 35) -> None:
        """A heading never ends a page alone; a CondPageBreak rather than keepWithNext, which would
        glue the heading to its whole table and push a table that could split to the next page."""
        from reportlab.lib.units import mm
        from reportlab.platypus import CondPageBreak

        self.story.append(CondPageBreak(millimetres * mm))

    def heading(self, text: str) -> None:
        from reportlab.platypus import Paragraph

        self.keep_room()
        self.story.append(Paragraph(escape(text), self.s.h2))

    def note(self, markup: str) -> None:
        from reportlab.platypus import Paragraph

        self.story.append(Paragraph(markup, self.s.small))

    def block(self, label: str, text: str, mono: bool = False) -> None:
        """A labelled free-text block: a Paragraph of its own, so a long text flows across pages."""
        from reportlab.platypus import Paragraph

        self.keep_room(15)
        self.story.append(Paragraph(escape(label), self.s.label))
        if not text.strip():
            self.story.append(Paragraph("—", self.s.body))
        elif mono:
            self.story.append(Paragraph(_mono_text(text, limit=20000), self.s.mono))
        else:
            self.story.append(Paragraph(_text(text, limit=None), self.s.body))

    def table(
        self,
        header: list[str],
        rows: list[list],
        widths_mm: list[float],
        *,
        result_col: int | None = None,
        results: list[bool | None] | None = None,
    ) -> None:
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        c = self.colors
        scale = self.width / (sum(widths_mm) * mm)
        widths = [w * mm * scale for w in widths_mm]
        cells = [[self.p(escape(h), self.s.cell_head) for h in header]]
        cells += [[cell if not isinstance(cell, str) else self.p(cell) for cell in row] for row in rows]
        style = [
            ("BACKGROUND", (0, 0), (-1, 0), c.HexColor("#1f4e79")),
            ("FONTNAME", (0, 0), (-1, -1), SANS),  # else reportlab sets Helvetica, which is not embedded
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("GRID", (0, 0), (-1, -1), 0.4, c.HexColor("#b0b7c3")),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]
        for i in range(1, len(cells)):
            if i % 2 == 0:
                style.append(("BACKGROUND", (0, i), (-1, i), c.HexColor("#f3f5f8")))
        if result_col is not None and results:
            for i, ok in enumerate(results, 1):
                if ok is not None:
                    style.append(
                        (
                            "BACKGROUND",
                            (result_col, i),
                            (result_col, i),
                            c.HexColor("#d9f2de") if ok else c.HexColor("#f9d6d5"),
                        )
                    )
        table = Table(cells, colWidths=widths, repeatRows=1, splitInRow=1, hAlign="LEFT")
        table.setStyle(TableStyle(style))
        self.story.append(table)

    def facts(self, pairs: list[tuple[str, str]]) -> None:
        """Key/value pairs as a two-column table; values are markup."""
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        c = self.colors
        rows = [[self.p(escape(k), self.s.label), self.p(v)] for k, v in pairs]
        table = Table(rows, colWidths=[38 * mm, self.width - 38 * mm], splitInRow=1, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), SANS),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.3, c.HexColor("#d5d9e0")),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                    ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        self.story.append(table)

    # Sections
    def build(self) -> list:
        d = self.data
        self.title_block()
        self.rfc_section()
        self.heading(gettext("Release"))
        rel = d["release"]
        artifact = rel["artifact_name"] or rel["artifact_url"] or "—"
        self.facts(
            [
                (gettext("Product and version"), _text(f"{rel['product']} {rel['version']}")),
                (
                    gettext("Artifact"),
                    _text(artifact) + (f" ({_size(rel['artifact_size'])})" if rel["artifact_size"] else ""),
                ),
                (gettext("Artifact SHA-256"), _hash(rel["artifact_sha256"], per_line=64, size=7.5)),
            ]
        )
        self.block(gettext("SQL migration"), rel["migration_sql"], mono=True)
        self.block(gettext("Undo script"), rel["undo_sql"], mono=True)
        self.impact_section()
        self.risk_section()
        self.gates_section()
        self.waivers_section()
        self.evidence_section()
        self.signoff_section()
        self.approvals_section()
        self.deployments_section()
        self.checks_section()
        self.audit_section()
        return self.story

    def title_block(self) -> None:
        d, r = self.data, self.data["rfc"]
        from reportlab.platypus import Paragraph

        self.story.append(
            Paragraph(escape(gettext("Evidence pack")) + " · Plant Change Control", self.s.kicker)
        )
        self.story.append(Paragraph(f"{escape(r['number'])} — {_text(r['title'], limit=None)}", self.s.h1))
        valid = [
            s
            for rnd in d["approval_rounds"]
            for st in rnd["steps"]
            for a in st["approvals"]
            for s in a["signatures"]
            if not s["voided"]
        ]
        passed = sum(1 for g in d["gates"] if g["passed"])
        last = d["deployments"][-1] if d["deployments"] else None
        self.facts(
            [
                (gettext("Portal version"), f"v{escape(d['portal_version'])}"),
                (gettext("Generated"), _when(d["generated_at"])),
                (
                    gettext("State"),
                    escape(r["state_label"])
                    + (" · <b>" + escape(gettext("high risk")) + "</b>" if r["high_risk"] else "")
                    + (" · <b>" + escape(gettext("emergency change")) + "</b>" if r["emergency"] else ""),
                ),
                (gettext("Class of change"), escape(r["change_class_label"])),
                (
                    gettext("Readiness gates"),
                    escape(
                        gettext("%(passed)s of %(total)s pass") % {"passed": passed, "total": len(d["gates"])}
                    ),
                ),
                (
                    gettext("Signatures"),
                    escape(
                        gettext("%(valid)s valid electronic signature(s) in %(rounds)s round(s)")
                        % {"valid": len(valid), "rounds": len(d["approval_rounds"])}
                    ),
                ),
                (
                    gettext("Latest deployment"),
                    escape(gettext("none"))
                    if last is None
                    else f"{escape(last['environment'])}: {escape(last['state_label'])}",
                ),
                (gettext("Content hash now"), _hash(d["current_content_hash"], per_line=64, size=7.5)),
            ]
        )
        self.note(
            escape(
                gettext(
                    "All times are UTC unless a site's local time is given with its zone. Hashes are SHA-256. "
                    "The JSON form of this pack holds the same record, including full texts and step output."
                )
            )
        )

    def rfc_section(self) -> None:
        r = self.data["rfc"]
        self.heading(gettext("Request for change"))
        yes, no = escape(gettext("yes")), escape(gettext("no"))
        self.facts(
            [
                (gettext("Author"), _text(f"{_name(r['author'])} ({r['author']['username']})")),
                (gettext("Filed"), _when(r["created_at_utc"])),
                (gettext("Submitted"), _when(r["submitted_at_utc"])),
                (
                    gettext("Estimated downtime"),
                    escape(gettext("%(minutes)s min") % {"minutes": r["estimated_downtime_minutes"]})
                    if r["estimated_downtime_minutes"]
                    else escape(gettext("none declared")),
                ),
                (gettext("Requested timing"), _text(r["requested_timing"] or "—")),
                (gettext("High risk"), yes if r["high_risk"] else no),
                (
                    gettext("Risk assessment"),
                    escape(
                        gettext("%(level)s (score %(score)s of 100)")
                        % {"level": r["risk"]["level"], "score": r["risk"]["score"]}
                    )
                    if r["risk"]["level"]
                    else escape(gettext("not complete")),
                ),
                (gettext("Emergency"), yes if r["emergency"] else no),
            ]
        )
        self.block(gettext("Description"), r["description"])
        if r["emergency"]:
            self.block(gettext("Emergency reason"), r["emergency_reason"])
        if r["retraining_note"]:
            self.block(gettext("Operator retraining"), r["retraining_note"])
        self.block(gettext("Rollback plan"), r["rollback_plan"])

    def impact_section(self) -> None:
        self.heading(gettext("Impact per site"))
        rows = [
            [
                _text(f"{i['site']} — {i['site_name']}")
                + f"<br/><font size=6.5>{escape(i['timezone'])}</font>",
                _text(", ".join(i["lines"]) or "—"),
                _text(", ".join(i["modules"]) or "—"),
                _text(", ".join(i.get("interfaces", [])) or "—"),
                _text(i["notes"] or "—"),
            ]
            for i in self.data["impacts"]
        ]
        if rows:
            self.table(
                [
                    gettext("Site"),
                    gettext("Lines"),
                    gettext("Modules"),
                    gettext("Interfaces"),
                    gettext("Notes"),
                ],
                rows,
                [36, 34, 34, 34, 36],
            )
        else:
            self.note(escape(gettext("No site is named.")))

    def risk_section(self) -> None:
        r = self.data["rfc"]["risk"]
        self.heading(gettext("Risk assessment"))
        rows = [
            [
                _text(a["question"]),
                _text(
                    gettext("%(answer)s (from the RFC)") % {"answer": a["answer"]}
                    if a["computed"]
                    else a["answer"]
                ),
                str(a["weight"]),
                escape(gettext("makes it high")) if a["forces_high"] else "",
            ]
            for a in r["answers"]
        ]
        if rows:
            self.table(
                [gettext("Question"), gettext("Answer"), gettext("Weight"), ""], rows, [96, 34, 16, 28]
            )
        else:
            self.note(escape(gettext("No risk assessment on record (filed before the assessment existed).")))

    def gates_section(self) -> None:
        """The gates as they stood when the newest PROD deployment started (what let it start), beside
        the gates now; before any PROD start, the gates now."""
        g = self.data["gates"]
        started = [d for d in self.data["deployments"] if d["tier"] == "PROD" and d["gates_at_start"]]

        def result(x: dict | None) -> str:
            if x is None:
                return "—"
            word = (
                gettext("WAIVED") if x.get("waived") else gettext("PASS") if x["passed"] else gettext("FAIL")
            )
            return f"<b>{escape(word)}</b>"

        if not started:
            self.heading(gettext("Readiness gates (now)"))
            rows = [[_text(x["name"]), result(x), _text(x["reason"])] for x in g]
            self.table(
                [gettext("Gate"), gettext("Result"), gettext("Reason and evidence")],
                rows,
                [42, 16, 116],
                result_col=1,
                results=[x["passed"] for x in g],
            )
            return
        last = started[-1]
        self.heading(
            gettext("Readiness gates when PROD started (%(when)s) and now")
            % {"when": _when(last["started_at_utc"])}
        )
        at_start = {x["name"]: x for x in last["gates_at_start"]}
        now = {x["name"]: x for x in g}
        names = list(at_start) + [name for name in now if name not in at_start]
        rows = [
            [
                _text(name),
                result(at_start.get(name)),
                result(now.get(name)),
                _text((at_start.get(name) or now[name])["reason"]),
            ]
            for name in names
        ]
        self.table(
            [gettext("Gate"), gettext("At start"), gettext("Now"), gettext("Reason and evidence at start")],
            rows,
            [40, 15, 15, 104],
            result_col=1,
            results=[at_start[name]["passed"] if name in at_start else None for name in names],
        )

    def waivers_section(self) -> None:
        waivers = self.data.get("waivers") or []
        if not waivers:
            return
        self.heading(gettext("Gate waivers"))
        rows = []
        for w in waivers:
            status = gettext("counts") if w["counts"] else gettext("for an earlier artifact")
            if w["revoked_at_utc"]:
                status = gettext("revoked %(when)s by %(name)s: %(reason)s") % {
                    "when": _when(w["revoked_at_utc"]),
                    "name": _name(w["revoked_by"]),
                    "reason": w["revoke_reason"],
                }
            rows.append(
                [
                    _text(w["gate"]),
                    f"{_text(_name(w['waived_by']))}<br/>{_when(w['waived_at_utc'])}",
                    _text(w["reason"]),
                    _text(w["failing_reason"]),
                    _text(status),
                ]
            )
        self.table(
            [
                gettext("Gate"),
                gettext("Waived by"),
                gettext("Reason"),
                gettext("The gate said"),
                gettext("Status"),
            ],
            rows,
            [28, 30, 44, 48, 24],
        )

    def evidence_section(self) -> None:
        self.heading(gettext("Evidence"))
        items = self.data["evidence"]
        if not items:
            self.note(escape(gettext("No evidence attached.")))
            return
        rows = []
        for e in items:
            superseded = (
                escape(gettext("superseded by %(name)s")) % {"name": _text(e["superseded_by"]["name"])}
                if e["superseded_by"]
                else escape(gettext("current"))
            )
            rows.append(
                [
                    f"<b>{_text(e['name'])}</b><br/>{escape(e['kind'])}"
                    + (f"<br/>{_text(e['description'])}" if e["description"] else ""),
                    _size(e["size"]),
                    _hash(e["sha256"]),
                    f"{_text(_name(e['uploaded_by']))}<br/>{_when(e['uploaded_at_utc'])}",
                    superseded,
                ]
            )
        self.table(
            [
                gettext("File, kind, description"),
                gettext("Size"),
                "SHA-256",
                gettext("Uploaded"),
                gettext("Status"),
            ],
            rows,
            [46, 15, 46, 43, 24],
        )

    def signoff_section(self) -> None:
        self.heading(gettext("UAT sign-off"))
        items = self.data["uat_signoffs"]
        if not items:
            self.note(escape(gettext("No UAT sign-off.")))
            return
        void, valid = escape(gettext("VOID")), escape(gettext("valid"))
        rows = [
            [
                f"{escape(s['site'])}<br/>{_text(s['release'])}",
                _text(_name(s["signed_by"])),
                f"{_when(s['signed_at_utc'])}<br/>{escape(s['signed_at_local'] or '')}",
                _text(s["comment"])
                + (
                    "<br/><font size=6.5>"
                    + escape(gettext("evidence %(count)s file(s): %(hashes)s"))
                    % {
                        "count": len(s["evidence_sha256"]),
                        "hashes": ", ".join(
                            f'<font face="{MONO}">{escape(h[:12])}</font>' for h in s["evidence_sha256"]
                        ),
                    }
                    + "</font>"
                    if s["evidence_sha256"]
                    else ""
                ),
                f"<b>{void}</b> {_when(s['voided_at_utc'])}: {_text(s['void_reason'])}"
                if s["voided"]
                else valid,
            ]
            for s in items
        ]
        self.table(
            [
                gettext("Site, release"),
                gettext("Signed by"),
                gettext("Time (UTC / site)"),
                gettext("Comment"),
                gettext("Status"),
            ],
            rows,
            [22, 22, 38, 72, 20],
            result_col=4,
            results=[not s["voided"] for s in items],
        )

    def approvals_section(self) -> None:
        from reportlab.platypus import Paragraph

        self.heading(gettext("Approvals and electronic signatures (21 CFR Part 11 §11.50)"))
        rounds = self.data["approval_rounds"]
        if not rounds:
            self.note(escape(gettext("Not submitted for approval.")))
            return
        void, valid = escape(gettext("VOID")), escape(gettext("valid"))
        for rnd in rounds:
            self.keep_room(40)
            self.story.append(
                Paragraph(
                    escape(gettext("Round %(number)s · %(purpose)s · %(state)s · opened %(when)s"))
                    % {
                        "number": rnd["number"],
                        "purpose": escape(rnd["purpose"]),
                        "state": escape(rnd["state"]),
                        "when": _when(rnd["created_at_utc"]),
                    }
                    + (
                        " · " + escape(gettext("closed %(when)s")) % {"when": _when(rnd["closed_at_utc"])}
                        if rnd["closed_at_utc"]
                        else ""
                    ),
                    self.s.h3,
                )
            )
            self.note(
                escape(gettext("Steps: %(steps)s · content hash at submission %(hash)s"))
                % {
                    "steps": "; ".join(
                        f"{st['order']}. {_text(st['label'])}"
                        + (f" ({_text(st['note'])})" if st["note"] else "")
                        + f" — {escape(st['state'])}"
                        for st in rnd["steps"]
                    ),
                    "hash": f"<font face='{MONO}'>{escape(rnd['content_hash'])}</font>",
                }
            )
            rows, results = [], []
            for st in rnd["steps"]:
                for a in st["approvals"]:
                    for s in a["signatures"]:
                        behalf = (
                            "<br/>"
                            + escape(gettext("on behalf of %(name)s"))
                            % {"name": _text(_name(s["on_behalf_of"]))}
                            if s["on_behalf_of"]
                            else ""
                        )
                        rows.append(
                            [
                                f"<b>{_text(s['printed_name'])}</b><br/>{_text(s['meaning'])}{behalf}",
                                f"{_when(s['signed_at_utc'])}<br/><b>{escape(s['signed_at_local'])}</b>",
                                f"{escape(s['via'])}<br/>{_text(s['reason'] or '—')}",
                                _hash(s["content_hash"]),
                                (
                                    f"<b>{void}</b> {_when(s['voided_at_utc'])}<br/>{_text(s['void_reason'])}"
                                    if s["voided"]
                                    else valid
                                ),
                            ]
                        )
                        results.append(not s["voided"])
            if rows:
                self.table(
                    [
                        gettext("Printed name and meaning"),
                        gettext("Signed (UTC / site)"),
                        gettext("Via, reason"),
                        gettext("Content hash"),
                        gettext("Status"),
                    ],
                    rows,
                    [44, 38, 26, 46, 20],
                    result_col=4,
                    results=results,
                )
            else:
                self.note(escape(gettext("No signature in this round yet.")))

    def deployments_section(self) -> None:
        from reportlab.platypus import Paragraph

        self.heading(gettext("Deployments"))
        deployments = self.data["deployments"]
        if not deployments:
            self.note(escape(gettext("Not deployed.")))
            return
        for dep in deployments:
            self.keep_room(40)
            self.story.append(
                Paragraph(
                    f"{escape(dep['environment'])} · {escape(dep['state_label'])}"
                    + (" · " + escape(gettext("emergency")) if dep["emergency"] else ""),
                    self.s.h3,
                )
            )
            self.facts(
                [
                    (
                        gettext("Scheduled"),
                        escape(gettext("%(when)s (%(local)s), %(minutes)s min, by %(name)s"))
                        % {
                            "when": _when(dep["scheduled_start_utc"]),
                            "local": escape(dep["scheduled_start_local"]),
                            "minutes": dep["duration_minutes"],
                            "name": _text(_name(dep["scheduled_by"])),
                        },
                    ),
                    (
                        gettext("Started / finished"),
                        f"{_when(dep['started_at_utc'])} / {_when(dep['finished_at_utc'])}",
                    ),
                    (gettext("Outcome"), _text(dep["outcome"] or dep["cancel_reason"] or "—")),
                ]
            )
            if dep["steps"]:
                rows = [
                    [
                        str(st["order"]),
                        _text(st["label"]),
                        escape(st["phase"]),
                        f"<b>{escape(st['state'])}</b>",
                        _text(st["adapter"] or "—"),
                        "—" if st["duration_seconds"] is None else f"{st['duration_seconds']:.1f} s",
                    ]
                    for st in dep["steps"]
                ]
                verdict = {"succeeded": True, "failed": False, "interrupted": False}
                self.table(
                    [
                        "#",
                        gettext("Step"),
                        gettext("Phase"),
                        gettext("State"),
                        gettext("Adapter"),
                        gettext("Duration"),
                    ],
                    rows,
                    [8, 50, 20, 24, 50, 22],
                    result_col=3,
                    results=[verdict.get(st["state"]) for st in dep["steps"]],
                )

    def checks_section(self) -> None:
        self.heading(
            gettext("Computed checks (rehearsals on a copy of UAT, or of DEV where a site has none)")
        )
        checks = self.data["checks"]
        if not checks:
            self.note(escape(gettext("No computed check has run.")))
            return
        rows = [
            [
                _text(c["kind_label"]),
                _text(c["environment"]),
                f"<b>{escape(c['state'])}</b>",
                _when(c["finished_at_utc"]),
                _text(c["summary"] or "—"),
            ]
            for c in checks
        ]
        self.table(
            [
                gettext("Check"),
                gettext("Environment"),
                gettext("State"),
                gettext("Finished"),
                gettext("Summary"),
            ],
            rows,
            [30, 22, 16, 30, 76],
        )
        for c in checks:
            self.check_detail(c)

    def check_detail(self, c: dict) -> None:
        """The replay's keys that did not match and the parallel run's differing rows, in small tables."""
        result = c.get("result") or {}

        def cell(rows) -> str:
            return "<br/>".join(_text(" · ".join(map(str, row)), limit=200) for row in rows) or "—"

        rows = [
            [_text(m["key"]), escape(outcome), cell(m["before"]), cell(m["after"])]
            for outcome, key in (
                (gettext("differing"), "differing"),
                (gettext("missing"), "missing"),
                (gettext("duplicated"), "duplicated"),
            )
            for m in result.get(key, [])
        ]
        if "counts" in result:
            self.note(
                escape(
                    gettext(
                        "%(environment)s, messages replayed: %(matched)s matched, %(differing)s differing, "
                        "%(missing)s missing, %(duplicated)s duplicated."
                    )
                    % {"environment": c["environment"], **result["counts"]}
                )
            )
        if rows:
            self.table(
                [gettext("Message"), gettext("Outcome"), gettext("Output before"), gettext("Output after")],
                rows,
                [34, 22, 59, 59],
            )
        for q in result.get("queries", []):
            rows = (
                [[escape(gettext("only before")), cell([r]), "—"] for r in q["only_before"]]
                + [[escape(gettext("only after")), "—", cell([r])] for r in q["only_after"]]
                + [[escape(gettext("changed")), cell(d["before"]), cell(d["after"])] for d in q["changed"]]
            )
            self.note(
                escape(
                    gettext("%(environment)s, parallel run of %(name)s: %(count)s difference(s).")
                    % {"environment": c["environment"], "name": q["name"], "count": q["differences"]}
                )
            )
            if rows:
                self.table([gettext("Difference"), gettext("Before"), gettext("After")], rows, [34, 70, 70])

    def audit_section(self) -> None:
        self.heading(gettext("Audit trail of this RFC"))
        events = self.data["audit_events"]
        self.note(
            escape(
                gettext(
                    "%(count)s event(s) from the hash-chained trail, in order. Each hash can be checked with "
                    "manage.py audit_verify."
                )
                % {"count": len(events)}
            )
        )
        rows = [
            [
                str(e["seq"]),
                _when(e["occurred_at_utc"]).replace(" UTC", ""),
                _text(e["actor"] or "—"),
                _text(e["action"]),
                _text(e["reason"] or ""),
                _hash(e["hash"]),
            ]
            for e in events
        ]
        if rows:
            self.table(
                [
                    gettext("Seq"),
                    gettext("Time (UTC)"),
                    gettext("Actor"),
                    gettext("Action"),
                    gettext("Reason"),
                    gettext("Hash"),
                ],
                rows,
                [8, 28, 20, 50, 22, 46],
            )


def _numbered_canvas(rfc_number: str):
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    class NumberedCanvas(canvas.Canvas):
        """Holds every page until the end, so each footer can say "page N of M"."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for page, state in enumerate(self._pages, 1):
                self.__dict__.update(state)
                width, _ = self._pagesize
                self.setFont(SANS, 7)
                self.setFillGray(0.35)
                self.line(18 * mm, 13 * mm, width - 18 * mm, 13 * mm)
                self.drawString(
                    18 * mm,
                    9 * mm,
                    gettext("%(number)s evidence pack — page %(page)s of %(total)s")
                    % {"number": rfc_number, "page": page, "total": total},
                )
                self.drawRightString(width - 18 * mm, 9 * mm, f"Plant Change Control v{__version__}")
                super().showPage()
            super().save()

    return NumberedCanvas


def render_pdf(data: dict) -> bytes:
    """The pack as an A4 PDF; fonts embedded, no external references, user text escaped."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    _register_fonts()
    number = data["rfc"]["number"]
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=20 * mm,
        title=gettext("%(number)s evidence pack") % {"number": number},
        author=f"Plant Change Control v{data['portal_version']}",
        subject=data["rfc"]["title"],
        creator="Plant Change Control",
        initialFontName=SANS,
    )
    story = _Builder(data, doc.width).build()
    doc.build(story, canvasmaker=_numbered_canvas(number))
    return buffer.getvalue()
