"""`Authorization: Token <secret>` for the API, against accounts' own expiring tokens."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts import tokens

KEYWORD = "Token"


class ApiTokenAuthentication(BaseAuthentication):
    """An API token in the Authorization header; sessions' timeouts do not apply to it."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: give `Token <key>`, no spaces in the key."
            )
        try:
            secret = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: the key has invalid characters."
            ) from None
        try:
            token = tokens.authenticate(secret)
        except tokens.TokenRefused as refused:
            raise exceptions.AuthenticationFailed(refused.message, code=refused.code) from None
        return token.user, token

    def authenticate_header(self, request):
        return KEYWORD
