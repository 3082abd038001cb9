"""One mapping from a refusal to what the user sees, for pages and the API alike (DESIGN "errors").

A service refuses by raising; every entry point turns the exception into the same status and text:
400 bad input, 403 not allowed, 409 state conflict, 413 too large, 422 a gate or rule says no.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext

from core.errors import RuleViolation, StateConflict

REFUSED = (ValidationError, PermissionDenied, StateConflict, RuleViolation)


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    code: str
    failed: list = field(default_factory=list)
    rule: str = ""


def refusal(exc: Exception) -> Refusal:
    """(status, message, code, failed gates) for a refused action."""
    if isinstance(exc, RuleViolation):
        return Refusal(422, str(exc), exc.code, exc.failed, exc.rule)
    if isinstance(exc, StateConflict):
        return Refusal(409, str(exc), exc.code)
    if isinstance(exc, PermissionDenied):
        return Refusal(403, str(exc) or gettext("You may not do this."), "permission_denied")
    if isinstance(exc, ValidationError):
        if getattr(exc, "code", None) == "too_large":
            return Refusal(413, exc.messages[0], "too_large")
        return Refusal(400, " ".join(exc.messages), "invalid")
    raise TypeError(f"{type(exc).__name__} is not a refusal")


def filter_errors(filterset) -> list[str]:
    """What a page shows for the filters a FilterSet refused; the API answers the same refusal with a
    400 whose `fields` name them (django-filter's DRF backend)."""
    return [item["text"] for item in filter_error_items(filterset)]


def filter_error_items(filterset) -> list[dict]:
    """The same messages with the id a refused field's aria-describedby points at (Django's
    "<id>_error"), on each field's first message."""
    form = filterset.form
    shown = []
    for name, messages in form.errors.items():
        label = str(form.fields[name].label or name.capitalize()) if name in form.fields else ""
        for index, message in enumerate(messages):
            shown.append(
                {
                    "id": f"{form[name].auto_id}_error" if label and index == 0 else "",
                    "text": message if not label or message.startswith(label) else f"{label}: {message}",
                }
            )
    return shown
