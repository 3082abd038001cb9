"""Two-step sign-in (MFA): TOTP from an authenticator app, with one-time recovery codes.

Built on django-otp: `TOTPDevice` (RFC 6238, with the last used time step kept so a code works once)
and `StaticDevice` (the recovery codes, each deleted when used). django-otp fits any sign-in backend
(password, LDAP, OpenID Connect): it only marks a session as verified, and `accounts.mfa_middleware`
sends a signed-in session to the code page (or to enrolment) before anything else.

Who must use it: anyone holding one of `settings.MFA_REQUIRED_ROLES` at any site. Anyone else may
enrol; once enrolled, their sign-in asks for the code as well.

Signatures: `check_signature_code` is called by the one password check of every signed act
(`approvals.services.require_password`); where the signer has an authenticator, a current code is
needed as well as the password.
"""

from __future__ import annotations

from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.utils.html import escape
from django.utils.translation import gettext, gettext_noop
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import record
from core.roles import Role
from environments import access

RECOVERY_CODE_COUNT = 10
# Stored as the device's name (English): marked so a page can show it translated.
DEVICE_NAME = gettext_noop("Authenticator app")
RECOVERY_NAME = "Recovery codes"

# What the session needs before anything else, decided at sign-in (no query per page).
SESSION_KEY = "accounts_mfa"
OK, VERIFY, SETUP = "ok", "verify", "setup"


# --- Who ------------------------------------------------------------------------------------------
def required_roles() -> frozenset[Role]:
    return frozenset(Role(value) for value in settings.MFA_REQUIRED_ROLES)


def is_required(user) -> bool:
    """The user holds a role that needs MFA, at any site."""
    needed = required_roles()
    return bool(needed) and bool(access.all_roles(user) & needed)


def totp_device(user) -> TOTPDevice | None:
    """The user's confirmed authenticator, if enrolled."""
    if user is None or not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def is_enrolled(user) -> bool:
    return (
        user is not None
        and user.is_authenticated
        and TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    )


def signs_with_code_only(user) -> bool:
    """A user who signs in only through the identity provider has no password here to re-enter: their
    signature is a current code alone (and they must enrol to sign)."""
    if user.has_usable_password():
        return False
    from accounts.models import DirectoryIdentity, DirectorySource

    return not DirectoryIdentity.objects.filter(user=user, source=DirectorySource.LDAP).exists()


@dataclass(frozen=True)
class SignatureFields:
    """What a signing form asks of this signer."""

    password: bool
    code: bool


def signature_fields(user) -> SignatureFields:
    code_only = signs_with_code_only(user)
    return SignatureFields(password=not code_only, code=code_only or is_enrolled(user))


# --- The session ------------------------------------------------------------------------------------
def login_state(user) -> str:
    if is_enrolled(user):
        return VERIFY
    if is_required(user):
        return SETUP
    return OK


def session_state(request) -> str:
    """OK, VERIFY or SETUP for the signed-in user of this session (decided once per sign-in)."""
    saved = request.session.get(SESSION_KEY)
    if isinstance(saved, dict) and saved.get("user") == request.user.pk:
        return saved.get("state", VERIFY)
    state = login_state(request.user)
    request.session[SESSION_KEY] = {"user": request.user.pk, "state": state}
    return state


def _set_state(request, state: str) -> None:
    request.session[SESSION_KEY] = {"user": request.user.pk, "state": state}


@receiver(user_logged_in, dispatch_uid="accounts-mfa-login")
def _decide_at_login(sender, request, user, **kwargs):
    """Every sign-in (password, LDAP, OpenID Connect, force_login) starts unverified."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = {"user": user.pk, "state": login_state(user)}


def mark_verified(request, device) -> None:
    """The second step is done: a new session key (the session's privilege changed) and django-otp's
    verified device in it."""
    request.session.cycle_key()
    otp_login(request, device)
    _set_state(request, OK)


# --- Enrolment --------------------------------------------------------------------------------------
def pending_device(user) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled (the same secret until it is confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def secret_text(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it by hand: base32, in groups of four."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (no script, nothing from outside)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=4)
    svg = image.to_string(encoding="unicode")
    label = escape(gettext("QR code that adds this account to an authenticator app"))
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def _clean(code: str) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def confirm_enrolment(request, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the pending authenticator with a current code: it becomes the user's, the session is
    verified, and fresh recovery codes are returned (to be shown once). None when the code is wrong."""
    user = request.user
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
        if not _clean(code).isdigit() or not locked.verify_token(_clean(code)):
            record(
                "accounts.mfa.failed",
                user,
                actor=user,
                reason="wrong code",
                after={"step": "enrolment", "method": "totp"},
            )
            return None
        TOTPDevice.objects.filter(user=user).exclude(pk=locked.pk).delete()
        locked.confirmed = True
        locked.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        record("accounts.mfa.enrolled", user, actor=user, after={"device": locked.name})
    mark_verified(request, locked)
    return codes


def _new_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def regenerate_recovery_codes(user) -> list[str]:
    """New recovery codes; the old ones stop working."""
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        record("accounts.mfa.recovery_regenerated", user, actor=user, after={"count": RECOVERY_CODE_COUNT})
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- The second step of a sign-in -------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    ok: bool
    message: str = ""


def verify_sign_in(request, code: str) -> Attempt:
    """Check the code of the second step: a current authenticator code (6 digits) or a recovery code
    (works once). Every attempt is audited."""
    user = request.user
    code = _clean(code)
    if not code:
        return Attempt(False, gettext("Enter the code your app shows now."))
    recovery = not (code.isdigit() and len(code) <= 8)
    method = "recovery" if recovery else "totp"
    model = StaticDevice if recovery else TOTPDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        allowed, throttled = device.verify_is_allowed() if device else (True, None)
        if device is not None and allowed and device.verify_token(code):
            if recovery:
                record(
                    "accounts.mfa.recovery_used",
                    user,
                    actor=user,
                    after={"remaining": recovery_codes_left(user)},
                )
            else:
                record("accounts.mfa.verified", user, actor=user, after={"method": method})
            verified = device
        else:
            reason = "too many wrong codes" if not allowed else "wrong code"
            record(
                "accounts.mfa.failed",
                user,
                actor=user,
                reason=reason,
                after={"step": "sign-in", "method": method},
            )
            if not allowed:
                return Attempt(False, _throttled_message(throttled))
            return Attempt(
                False,
                gettext("That recovery code is not valid (each one works once).")
                if recovery
                else gettext("That code is not correct. Enter the code your app shows now."),
            )
    mark_verified(request, verified)
    return Attempt(True)


def _throttled_message(throttled) -> str:
    until = (throttled or {}).get("locked_until")
    if until:
        return gettext("Too many wrong codes: wait until %(time)s UTC and try again.") % {
            "time": f"{until:%H:%M:%S}"
        }
    return gettext("Too many wrong codes: wait and try again.")


# --- Signatures ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeRefusal:
    reason: str  # for the audit trail
    message: str  # for the signer


def check_signature_code(user, code: str | None) -> CodeRefusal | None:
    """None when the signer needs no code or gave a current one; else why not.

    A code works once: django-otp keeps the time step of the last code accepted (`last_t`), so the
    code that signed in, or signed a moment ago, is refused until the app shows the next one.
    """
    device = totp_device(user)
    if device is None:
        if signs_with_code_only(user):
            return CodeRefusal(
                "no authenticator",
                gettext("Signing needs a code from an authenticator app: set up two-step sign-in first."),
            )
        return None
    code = _clean(code or "")
    if not code:
        return CodeRefusal("missing code", gettext("Enter the current code from your authenticator app."))
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, throttled = locked.verify_is_allowed()
        if not allowed:
            return CodeRefusal("too many wrong codes", _throttled_message(throttled))
        if code.isdigit() and locked.verify_token(code):
            return None
        if code.isdigit() and _matches_used_step(locked, code):
            return CodeRefusal(
                "code already used",
                gettext("This code has been used already: wait for the next code in your app."),
            )
        if not code.isdigit():
            locked.throttle_increment(commit=True)
    return CodeRefusal("wrong code", gettext("The code is not correct: enter the code your app shows now."))


def _matches_used_step(device: TOTPDevice, code: str) -> bool:
    """The code is one of the current window's, at a time step already used."""
    import time

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return bool(totp.verify(int(code), device.tolerance)) and totp.t() <= device.last_t


# --- Administration ---------------------------------------------------------------------------------
def reset(user, *, actor, reason: str) -> bool:
    """Remove the user's authenticator and recovery codes (a lost phone). They enrol again at their
    next sign-in if a role requires it. Audited; False when there was nothing to remove."""
    with transaction.atomic():
        had = TOTPDevice.objects.filter(user=user).exists() or StaticDevice.objects.filter(user=user).exists()
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        record("accounts.mfa.reset", user, actor=actor, reason=reason, after={"had_device": had})
    return had
