"""Paragraph styles for the portal's reports (traceability matrix, periodic review): the evidence
pack's embedded fonts (Bitstream Vera, shipped inside reportlab), so any text prints as typed."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def styles() -> dict:
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    from reports.evidence_pack import BOLD, SANS, _register_fonts

    _register_fonts()
    sheet = getSampleStyleSheet()
    found = {
        "Title": ParagraphStyle("title", parent=sheet["Title"], fontName=BOLD),
        "Heading2": ParagraphStyle("h2", parent=sheet["Heading2"], fontName=BOLD, fontSize=12.5, leading=16),
        "BodyText": ParagraphStyle(
            "body", parent=sheet["BodyText"], fontName=SANS, fontSize=9.5, leading=12.5
        ),
    }
    found["small"] = ParagraphStyle(
        "small", parent=found["BodyText"], fontSize=7.5, leading=9.5, splitLongWords=True
    )
    found["bold"] = BOLD
    return found


def text(value) -> str:
    """Any value made safe for a Paragraph: control characters dropped, markup escaped."""
    return escape(_CONTROL.sub("", "" if value is None else str(value)))


MARGIN_MM = 14


def page_width() -> float:
    """The printable width of the reports' A4 page, in points."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    return A4[0] - 2 * MARGIN_MM * mm


def render(title: str, story: list) -> bytes:
    """An A4 report of `story` (reportlab flowables) with the portal as author."""
    import io

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    margin = MARGIN_MM * mm
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=title,
        author="Plant Change Control",
    ).build(story)
    return buffer.getvalue()
