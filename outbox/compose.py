"""Mail as people expect it from a system: multipart (text and HTML from one template), a configurable
sender, marked as automatic (RFC 3834) and threaded per subject (one RFC's mails group in a client).

One template renders both parts: it is rendered with `html=True` for the HTML part and `html=False` for
the text part, so the two can never say different things.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import make_msgid
from django.template.loader import render_to_string
from django.utils import translation

AUTOMATIC = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}


def render(template: str, context: dict) -> tuple[str, str]:
    """(text, html) of one template."""
    text = render_to_string(template, {**context, "html": False})
    html = render_to_string(template, {**context, "html": True})
    return _tidy(text), html


def html_from_text(text: str) -> str:
    """An HTML part for a mail written as text: escaped, paragraphs kept, addresses as links."""
    from django.utils.html import escape, urlize

    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    body = "".join(
        f"<p>{urlize(escape(p), autoescape=False).replace(chr(10), '<br>')}</p>\n" for p in paragraphs
    )
    return (
        f'<!doctype html>\n<html lang="{translation.get_language() or settings.LANGUAGE_CODE}"><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: Arial, Helvetica, sans-serif; line-height: 1.45; max-width: 640px;">\n'
        f"{body}</body></html>\n"
    )


def _tidy(text: str) -> str:
    """Template indentation and blank runs out of the text part."""
    lines = [line.strip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"


def sender() -> str:
    return settings.NOTIFY_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL


def thread_id(kind: str, key: str, domain: str) -> str:
    """A stable Message-ID-like identifier for a thread, e.g. <rfc-…@change.plant.example>."""
    return f"<{kind}-{key}@{domain}>"


def headers(thread: str, domain: str) -> dict[str, str]:
    """Automatic, with its own Message-ID, and in the thread `thread` (References/In-Reply-To)."""
    return {
        **AUTOMATIC,
        "Message-ID": make_msgid(domain=domain),
        "References": thread,
        "In-Reply-To": thread,
    }
