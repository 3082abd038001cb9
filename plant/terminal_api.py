"""Terminals over the API (issue 19): `POST /api/v1/terminals/report/` — a terminal says what it runs —
and `GET /api/v1/terminals/badge.json|.svg` — the environment's active version for its footer.

Both authenticate with the site's terminal token (`Authorization: Bearer pcct_…`; the badge also takes
`?token=` because an `<img>` in a terminal's footer cannot send a header). A terminal token is not a
person: it can report and read the badge of its own site, nothing else. Answers are in English.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from core.clientip import client_ip
from environments import terminals
from environments.models import Environment, Site, Tier


class TerminalTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <site terminal token>` (or `?token=` on a GET)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        raw = header[7:].strip() if header.startswith("Bearer ") else ""
        if not raw and request.method in ("GET", "HEAD"):
            raw = request.query_params.get("token", "")
        if not raw:
            return None
        site = terminals.site_for(raw)
        if site is None:
            raise AuthenticationFailed("Unknown or replaced terminal token.")
        return AnonymousUser(), site

    def authenticate_header(self, request):
        return 'Bearer realm="terminals"'


class TerminalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "plant.terminal_api.TerminalTokenAuthentication"
    name = "terminalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A site's terminal token (an admin issues it on the site's PROD environment page).",
        }


class HasSiteToken(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Site)


def _environment(site: Site, tier: str) -> Environment:
    env = (
        Environment.objects.filter(site=site, tier=(tier or Tier.PROD).upper()).select_related("site").first()
    )
    if env is None:
        raise NotFound(f"{site.code} has no {tier or Tier.PROD} environment.")
    return env


@extend_schema(
    summary="A terminal reports the version it runs",
    request=inline_serializer(
        "TerminalReport",
        {
            "name": serializers.CharField(max_length=100),
            "version": serializers.CharField(help_text="MAJOR.MINOR.PATCH"),
            "product": serializers.CharField(required=False, help_text="Needed where the tier runs several."),
            "tier": serializers.ChoiceField(choices=Tier.values, required=False, help_text="Default PROD."),
        },
    ),
    responses=inline_serializer(
        "TerminalReported",
        {
            "name": serializers.CharField(),
            "product": serializers.CharField(),
            "version": serializers.CharField(),
            "environment": serializers.CharField(),
            "expected": serializers.CharField(help_text="The environment's active version of the product."),
            "current": serializers.BooleanField(),
        },
    ),
)
@api_view(["POST"])
@authentication_classes([TerminalTokenAuthentication])
@permission_classes([HasSiteToken])
def report(request):
    if not isinstance(request.data, Mapping):
        raise ApiValidationError({"detail": "Send a JSON object with name and version."})
    try:
        terminal = terminals.report(request.auth, request.data, address=client_ip(request._request))
    except ValidationError as exc:
        raise ApiValidationError(exc.message_dict) from None
    env = Environment.objects.prefetch_related("products").get(pk=terminal.environment_id)
    expected = env.versions.get(terminal.product, "")
    return Response(
        {
            "name": terminal.name,
            "product": terminal.product,
            "version": terminal.version,
            "environment": f"{request.auth.code} {env.tier}",
            "expected": expected,
            "current": expected == terminal.version,
        }
    )


BADGE_PARAMS = [
    OpenApiParameter("tier", str, description="DEV, UAT or PROD (default PROD)."),
    OpenApiParameter("product", str, description="Needed where the tier runs several products."),
    OpenApiParameter("token", str, description="The terminal token, where no header can be sent."),
]


def _badge(request) -> dict:
    env = _environment(request.auth, request.query_params.get("tier", ""))
    return terminals.badge(env, request.query_params.get("product", "").strip())


@extend_schema(
    summary="The active version, as a badge's data (shields.io endpoint format)",
    parameters=BADGE_PARAMS,
    responses=inline_serializer(
        "VersionBadge",
        {
            "schemaVersion": serializers.IntegerField(),
            "label": serializers.CharField(),
            "message": serializers.CharField(),
            "color": serializers.CharField(),
            "product": serializers.CharField(),
            "version": serializers.CharField(),
        },
    ),
)
@api_view(["GET"])
@authentication_classes([TerminalTokenAuthentication])
@permission_classes([HasSiteToken])
def badge_json(request):
    response = Response(_badge(request))
    response["Cache-Control"] = "max-age=60"
    return response


@extend_schema(
    summary="The active version as an SVG badge for a terminal's footer",
    parameters=BADGE_PARAMS,
    responses={(200, "image/svg+xml"): OpenApiTypes.STR},
)
@api_view(["GET"])
@authentication_classes([TerminalTokenAuthentication])
@permission_classes([HasSiteToken])
def badge_svg(request):
    response = HttpResponse(terminals.badge_svg(_badge(request)), content_type="image/svg+xml")
    response["Cache-Control"] = "max-age=60"
    return response
