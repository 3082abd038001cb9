"""The two-step sign-in pages: the code after signing in, enrolment, recovery codes."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts import mfa

NEW_CODES_KEY = "accounts_mfa_new_codes"


def _next(request, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def verify(request):
    """The second step of a sign-in: a current code, or a recovery code."""
    if not mfa.is_enrolled(request.user):
        return redirect(_next(request))
    if mfa.session_state(request) == mfa.OK and request.user.is_verified():
        return redirect(_next(request))
    context = {"next": _next(request, "")}
    status = 200
    if request.method == "POST":
        attempt = mfa.verify_sign_in(request, request.POST.get("otp_code", ""))
        if attempt.ok:
            left = mfa.recovery_codes_left(request.user)
            if request.user.otp_device.persistent_id.startswith("otp_static"):
                messages.warning(
                    request,
                    ngettext(
                        "You signed in with a recovery code; %(left)d left. Make new ones on the two-step "
                        "sign-in page if you are running low.",
                        "You signed in with a recovery code; %(left)d left. Make new ones on the two-step "
                        "sign-in page if you are running low.",
                        left,
                    )
                    % {"left": left},
                )
            return redirect(_next(request))
        context["error"], status = attempt.message, 400
    return render(request, "accounts/mfa_verify.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def setup(request):
    """Enrol an authenticator app: scan the QR code (or type the secret), confirm with a code."""
    if mfa.is_enrolled(request.user):
        return redirect("accounts:mfa_manage")
    device = mfa.pending_device(request.user)
    context = {
        "qr_svg": mfa.qr_svg(device),
        "secret": mfa.secret_text(device),
        "next": _next(request, ""),
        "required": mfa.is_required(request.user),
    }
    status = 200
    if request.method == "POST":
        codes = mfa.confirm_enrolment(request, device, request.POST.get("otp_code", ""))
        if codes is not None:
            request.session[NEW_CODES_KEY] = codes
            return redirect(f"{_recovery_url()}?{urlencode({'next': _next(request)})}")
        context["error"], status = _("That code is not correct. Enter the code your app shows now."), 400
    return render(request, "accounts/mfa_setup.html", context, status=status)


def _recovery_url() -> str:
    from django.urls import reverse

    return reverse("accounts:mfa_recovery_codes")


@login_required
@require_http_methods(["GET", "HEAD"])
def recovery_codes(request):
    """New recovery codes, shown this once."""
    codes = request.session.pop(NEW_CODES_KEY, None)
    if not codes:
        messages.info(
            request, _("Recovery codes are shown only once, when they are made. Make new ones below.")
        )
        return redirect("accounts:mfa_manage")
    return render(request, "accounts/mfa_recovery_codes.html", {"codes": codes, "next": _next(request)})


@login_required
@require_http_methods(["GET", "HEAD"])
def manage(request):
    user = request.user
    return render(
        request,
        "accounts/mfa_manage.html",
        {
            "device": mfa.totp_device(user),
            "codes_left": mfa.recovery_codes_left(user),
            "required": mfa.is_required(user),
        },
    )


@login_required
@require_POST
def regenerate(request):
    if not mfa.is_enrolled(request.user):
        return redirect("accounts:mfa_setup")
    request.session[NEW_CODES_KEY] = mfa.regenerate_recovery_codes(request.user)
    return redirect("accounts:mfa_recovery_codes")
