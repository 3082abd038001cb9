"""The request a piece of work runs for (a request id, the client address), for the audit trail.

The web middleware sets it; workers and commands run without one.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip_address: str | None
    request: object | None = None


_current: ContextVar[RequestContext | None] = ContextVar("changecontrol_request", default=None)


def current_context() -> RequestContext | None:
    return _current.get()


def enter(context: RequestContext):
    """Set the context for the work that follows; pass the token to `leave` when it ends."""
    return _current.set(context)


def leave(token) -> None:
    _current.reset(token)
