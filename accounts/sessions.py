"""Session timeouts: a session ends after SESSION_IDLE_MINUTES without a request and
SESSION_ABSOLUTE_HOURS after sign-in. The clocks live in the session and are read through core.clock."""

from __future__ import annotations

from django.conf import settings

from core import clock

STARTED = "accounts_started_at"
SEEN = "accounts_seen_at"
# The last-seen time is written at most this often (seconds), not on every request.
SEEN_EVERY = 30


def start(session) -> None:
    now = clock.now().timestamp()
    session[STARTED] = now
    session[SEEN] = now


def expired(session, *, activity: bool = True) -> str | None:
    """ "idle" or "absolute" when the session has run out; else None (and, for an act of the person,
    the last-seen time moves on)."""
    idle = settings.SESSION_IDLE_MINUTES * 60
    absolute = settings.SESSION_ABSOLUTE_HOURS * 3600
    if not idle and not absolute:
        return None
    now = clock.now().timestamp()
    started, seen = session.get(STARTED), session.get(SEEN)
    if not isinstance(started, int | float) or not isinstance(seen, int | float):
        start(session)  # a session from before timeouts existed: its clocks start now
        return None
    if absolute and now - started >= absolute:
        return "absolute"
    if idle and now - seen >= idle:
        return "idle"
    if activity and now - seen >= SEEN_EVERY:
        session[SEEN] = now
    return None
