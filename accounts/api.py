"""The token endpoint (a username and password for an expiring API token) and the caller's tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import translation
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.response import Response

from accounts import lockout, tokens
from accounts.forms import locked_text
from accounts.models import ApiToken
from accounts.throttling import LoginThrottle
from audit.services import record
from core import clock
from core.api import ErrorSerializer
from core.clientip import client_ip


class InvalidCredentials(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Unable to log in with the provided credentials."
    default_code = "invalid_credentials"


class AccountLocked(exceptions.APIException):
    """429 with Retry-After: the account or the client address is locked after failed passwords."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked"

    def __init__(self, lock: lockout.Lock):
        with translation.override(None):  # the API's error bodies are for programs: English
            super().__init__(locked_text(lock))
        self.wait = lock.retry_after()


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="What the token is for (optional)."
    )
    days = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Days until the token expires (default API_TOKEN_DAYS, at most API_TOKEN_MAX_DAYS).",
    )

    def validate_days(self, value):
        if value > settings.API_TOKEN_MAX_DAYS:
            raise serializers.ValidationError(f"At most {settings.API_TOKEN_MAX_DAYS} days.")
        return value


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="The secret: shown once, send it as `Authorization: Token <token>`."
    )
    name = serializers.CharField()
    expires_at = serializers.DateTimeField()


@extend_schema(
    request=TokenRequestSerializer,
    responses={
        200: TokenResponseSerializer,
        400: OpenApiResponse(ErrorSerializer, description="Wrong credentials or invalid input."),
        429: OpenApiResponse(
            ErrorSerializer,
            description="Too many failed passwords: the account or the client address is locked (Retry-After).",
        ),
    },
    summary="Exchange a username and password for an expiring API token",
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([LoginThrottle])
def obtain_token(request):
    serializer = TokenRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    username, address = data["username"], client_ip(request)
    try:
        lockout.check(username, address, entry="token")
    except lockout.Locked as locked:
        raise AccountLocked(locked.lock) from None
    user = authenticate(request._request, username=username, password=data["password"])
    if user is None:
        record("accounts.token.refused", actor_name=username[:150], object_type="auth.user")
        lock = lockout.failed(username, address, entry="token")
        if lock is not None:
            raise AccountLocked(lock)
        raise InvalidCredentials()
    lockout.succeeded(username)
    try:
        token, secret = tokens.issue(user, name=data.get("name", ""), days=data.get("days"))
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(exc.message_dict) from None
    return Response({"token": secret, "name": token.name, "expires_at": token.expires_at})


class ApiTokenSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField(help_text="active, expired or revoked")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "state"]
        read_only_fields = fields

    def get_state(self, token) -> str:
        return token.state(clock.now())


@extend_schema_view(
    list=extend_schema(summary="The caller's API tokens (newest first; the secrets are never shown again)"),
    destroy=extend_schema(
        summary="Revoke one of the caller's API tokens",
        responses={
            204: None,
            404: OpenApiResponse(ErrorSerializer, description="Not one of the caller's tokens."),
        },
    ),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        return (
            ApiToken.objects.filter(user=self.request.user)
            .select_related("user")
            .order_by("-created_at", "-id")
        )

    def perform_destroy(self, instance):
        tokens.revoke(instance, actor=self.request.user, reason="revoked by its owner")
