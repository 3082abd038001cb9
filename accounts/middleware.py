"""Ends a session that has been idle too long or has reached its absolute limit (accounts/sessions.py).

A page gets a redirect to the sign-in page with a message, an htmx request an `HX-Redirect` (not a
sign-in page swapped into a fragment), an API call simply continues without the session (a token in
its Authorization header still works: API tokens are not sessions)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django.utils.translation import ngettext
from django_htmx.http import HttpResponseClientRedirect

from accounts import sessions
from audit.services import record

# Requests an htmx element makes by itself on a timer (hx-trigger="every …") send this header; they
# are not the person's activity and do not keep a session alive.
POLL_HEADER = "X-Portal-Poll"


def _message(reason: str) -> str:
    if reason == "idle":
        minutes = settings.SESSION_IDLE_MINUTES
        return ngettext(
            "You were signed out after %(minutes)d minute without activity. Sign in again to continue.",
            "You were signed out after %(minutes)d minutes without activity. Sign in again to continue.",
            minutes,
        ) % {"minutes": minutes}
    hours = settings.SESSION_ABSOLUTE_HOURS
    return ngettext(
        "You were signed out: a session lasts at most %(hours)d hour. Sign in again to continue.",
        "You were signed out: a session lasts at most %(hours)d hours. Sign in again to continue.",
        hours,
    ) % {"hours": hours}


class SessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        activity = request.headers.get(POLL_HEADER) != "1"
        reason = sessions.expired(request.session, activity=activity)
        if reason is None:
            return self.get_response(request)
        record(
            "accounts.session.expired",
            actor=user,
            object_type="auth.user",
            object_id=str(user.pk),
            after={
                "reason": reason,
                "idle_minutes": settings.SESSION_IDLE_MINUTES,
                "absolute_hours": settings.SESSION_ABSOLUTE_HOURS,
            },
        )
        logout(request)
        login_url = resolve_url(settings.LOGIN_URL)
        if request.path.startswith("/api/") or request.path == login_url:
            return self.get_response(request)
        messages.info(request, _message(reason))
        if request.headers.get("HX-Request") == "true":
            current = urlsplit(request.headers.get("HX-Current-URL", ""))
            back = current.path + (f"?{current.query}" if current.query else "") if current.path else "/"
            return HttpResponseClientRedirect(redirect_to_login(back).url)
        return redirect_to_login(request.get_full_path())
