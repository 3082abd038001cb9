"""OpenID Connect sign-in through mozilla-django-oidc: one authentication backend and two views
(start, callback); the local login, password change and break-glass accounts stay as they are.

The provider's endpoints come from OIDC_ISSUER's discovery document (read once per process and
issuer) unless they are set one by one. The ID token's signature (JWKS), nonce, issuer and audience
are checked; PKCE is on. A user is found by issuer + `sub` (DirectoryIdentity), created on first
sign-in, and their roles follow the groups claim through the shared DirectoryGroupMapping.
"""

from __future__ import annotations

import logging
import threading

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.translation import gettext, gettext_noop
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.services import record

from . import directory
from .models import DirectorySource

logger = logging.getLogger(__name__)

BACKEND = "accounts.oidc.PortalOIDCBackend"
# mozilla-django-oidc setting → discovery document key.
_DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovery: dict[str, dict] = {}
_discovery_lock = threading.Lock()


class ProviderUnreachable(Exception):
    """The OpenID Provider's discovery document could not be read."""


def enabled() -> bool:
    """Configured when a client id is set with an issuer or the endpoints, and the backend is on."""
    explicit = all(getattr(settings, name, "") for name in _DISCOVERED)
    return bool(
        getattr(settings, "OIDC_RP_CLIENT_ID", "")
        and (getattr(settings, "OIDC_ISSUER", "") or explicit)
        and BACKEND in settings.AUTHENTICATION_BACKENDS
    )


def display_name() -> str:
    return getattr(settings, "OIDC_DISPLAY_NAME", "") or gettext("single sign-on")


def issuer() -> str:
    return (getattr(settings, "OIDC_ISSUER", "") or "").rstrip("/")


def discovery(issuer_url: str) -> dict:
    with _discovery_lock:
        cached = _discovery.get(issuer_url)
    if cached is not None:
        return cached
    url = f"{issuer_url}/.well-known/openid-configuration"
    try:
        response = requests.get(
            url,
            timeout=getattr(settings, "OIDC_TIMEOUT", 10),
            verify=getattr(settings, "OIDC_VERIFY_SSL", True),
        )
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnreachable(f"{url}: {exc}") from exc
    if str(document.get("issuer", "")).rstrip("/") != issuer_url:
        raise ProviderUnreachable(f"{url} names another issuer ({document.get('issuer')!r})")
    with _discovery_lock:
        _discovery[issuer_url] = document
    return document


def oidc_setting(attr, *args):
    """mozilla-django-oidc's settings, with the endpoints filled from discovery when not set."""
    if attr in _DISCOVERED and not getattr(settings, attr, ""):
        if issuer():
            value = discovery(issuer()).get(_DISCOVERED[attr])
            if value:
                return value
        if args:
            return args[0]
        raise ImproperlyConfigured(f"{attr}: set OIDC_ISSUER or the endpoint itself")
    return import_from_settings(attr, *args)


def _claim_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item is not None]
    return []


class PortalOIDCBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        # Django builds a backend for every request of a signed-in user (get_user) and for every
        # password login: neither may depend on the provider being reachable. The endpoints are read
        # (discovered) only when a provider's answer is being checked.
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if (
            request is None
            or not (request.GET.get("code") and request.GET.get("state"))
            or "nonce" not in kwargs
        ):
            return None
        super().__init__()
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        expected = issuer()
        if expected and str(payload.get("iss", "")).rstrip("/") != expected:
            raise SuspiciousOperation("ID token from another issuer")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client")
        if not payload.get("sub"):
            raise SuspiciousOperation("ID token without a subject")
        return payload

    def _issuer_of(self, payload) -> str:
        return str(payload.get("iss") or issuer()).rstrip("/")

    def get_or_create_user(self, access_token, id_token, payload):
        claims = {**self.get_userinfo(access_token, id_token, payload)}
        # The userinfo `sub` must be the ID token's (OIDC Core 5.3.2).
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo subject differs from the ID token's")
        for key, value in payload.items():
            claims.setdefault(key, value)
        iss, sub = self._issuer_of(payload), str(payload["sub"])
        username_at_source = str(claims.get("preferred_username") or claims.get("email") or sub)
        user = directory.find_user(DirectorySource.OIDC, iss, sub)
        if user is None:
            if not self.get_settings("OIDC_CREATE_USER", True):
                return None
            user = self.UserModel(username=directory.free_username(username_at_source))
            user.set_unusable_password()
            self._fill(user, claims)
            user.save()
            identity = directory.link_identity(user, DirectorySource.OIDC, iss, sub, username_at_source)
        else:
            self._fill(user, claims)
            user.save()
            identity = user.directory_identities.get(source=DirectorySource.OIDC, issuer=iss, subject=sub)
            identity.username_at_source = username_at_source[:255]
        if not user.is_active:
            return None
        groups = _claim_list(claims.get(self.get_settings("OIDC_GROUPS_CLAIM", "groups")))
        directory.signed_in(user, identity, groups)
        return user

    @staticmethod
    def _fill(user, claims) -> None:
        name = str(claims.get("name") or "").strip()
        first = str(claims.get("given_name") or "").strip()
        last = str(claims.get("family_name") or "").strip()
        if not (first or last) and name:
            first, _, last = name.partition(" ")
        user.first_name, user.last_name = first[:150], last[:150]
        if claims.get("email"):
            user.email = str(claims["email"])[:254]


class StartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider (404 when OpenID Connect is not configured)."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        # The parent reads the endpoints here; defer to dispatch, where a failure can be answered.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        if not enabled():
            raise Http404("OpenID Connect sign-in is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
            self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        except ProviderUnreachable as exc:
            logger.warning("OpenID Provider unreachable: %s", exc)
            messages.error(
                request,
                gettext(
                    "%(provider)s could not be reached. Try again later, or sign in with a local account."
                )
                % {"provider": display_name()},
            )
            return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))
        return super().dispatch(request, *args, **kwargs)


class CallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer. Any failure (an error from the provider, a forged or replayed state,
    a code the provider refuses, a token that does not verify) ends on the login page with a message
    and an audit event, never an error page."""

    get_settings = staticmethod(oidc_setting)

    @property
    def failure_url(self):
        return resolve_url(settings.LOGIN_URL)

    def login_failure(
        self,
        reason: str = gettext_noop("the provider did not confirm who you are"),
        params: dict | None = None,
    ):
        """`reason` is English (the audit trail keeps it so), marked with gettext_noop where it is
        written; the person reads it in their language."""
        params = params or {}
        record(
            "accounts.directory.sign_in_failed",
            actor_name="",
            object_type="auth.user",
            after={
                "source": DirectorySource.OIDC.value,
                "reason": (reason % params if params else reason)[:500],
            },
        )
        shown = gettext(reason) % params if params else gettext(reason)
        messages.error(
            self.request,
            gettext("Sign-in with %(provider)s failed: %(reason)s.")
            % {"provider": display_name(), "reason": shown},
        )
        return HttpResponseRedirect(self.failure_url)

    def get(self, request):
        if not enabled():
            raise Http404("OpenID Connect sign-in is not configured")
        states = request.session.get("oidc_states", {})
        state = request.GET.get("state")
        if request.GET.get("error"):
            if state in states:  # a refused sign-in cannot be replayed either
                del states[state]
                request.session.modified = True
            return self.login_failure(
                gettext_noop("the provider answered %(error)s"), {"error": repr(request.GET["error"][:100])}
            )
        if not request.GET.get("code") or not state:
            return self.login_failure(gettext_noop("the answer had no code or state"))
        if state not in states:
            return self.login_failure(gettext_noop("the answer does not belong to a sign-in started here"))
        try:
            # Authenticates (our backend), logs in, or answers login_failure() when nobody matched.
            return super().get(request)
        except (SuspiciousOperation, requests.RequestException, ProviderUnreachable, ValueError) as exc:
            logger.warning("OpenID Connect sign-in failed: %s", exc)
            return self.login_failure(gettext_noop("the provider's answer could not be verified"))
