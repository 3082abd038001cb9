"""After any sign-in (password, LDAP, OpenID Connect) the second step comes before anything else.

A session whose user has an authenticator goes to the code page until it is verified; a user whose
role requires MFA and who has none goes to enrolment. Logging out, static files, the health check
and the MFA pages themselves stay open. An API request with a token is not a session and is not
stopped here (the token endpoint and token auth are their own concern); a session's API request is
refused with a 403 until the second step is done, and with an Authorization header of any kind the
half-signed-in session is ignored (only the header's credentials count).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts import mfa


class MFAMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def _open(self, path: str) -> bool:
        static = settings.STATIC_URL or "/static/"
        return path.startswith((static, "/accounts/mfa/verify/", "/accounts/mfa/setup/")) or path in (
            "/healthz",
            "/favicon.ico",
            reverse("logout"),
            reverse("login"),
        )

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or self._open(request.path):
            return self.get_response(request)
        state = mfa.session_state(request)
        if state == mfa.OK:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            if "HTTP_AUTHORIZATION" in request.META:
                # The request's own credentials decide; the half-signed-in session counts for nothing.
                request.user = AnonymousUser()
                return self.get_response(request)
            return JsonResponse(
                {
                    "detail": "Finish the two-step sign-in in the portal first, or use an API token.",
                    "code": "mfa_required",
                },
                status=403,
            )
        target = reverse("accounts:mfa_verify" if state == mfa.VERIFY else "accounts:mfa_setup")
        if request.method in ("GET", "HEAD"):
            target += "?" + urlencode({"next": request.get_full_path()})
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)
