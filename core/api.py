"""API plumbing every package's endpoints share: one error shape, bounded pages, gate results."""

from __future__ import annotations

import uuid

from django.http import Http404
from drf_spectacular.utils import (
    OpenApiResponse,
)
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class GateSerializer(serializers.Serializer):
    name = serializers.CharField()
    passed = serializers.BooleanField()
    reason = serializers.CharField()
    waived = serializers.BooleanField(
        default=False, help_text="A failing gate a release manager waived for this RFC's artifact."
    )
    waived_by = serializers.CharField(default="", help_text="Who waived it (empty when not waived).")
    waived_at = serializers.DateTimeField(
        default=None, allow_null=True, help_text="When it was waived (UTC)."
    )


class UrlOrNullField(serializers.URLField):
    """A URL, or null where none is held (a blank model field is never sent as "" typed a URI)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value or None


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API."""

    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(help_text="What went wrong, for programs (e.g. not_found, invalid).")


class ValidationErrorSerializer(ErrorSerializer):
    fields = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="Field name -> its errors, when the input named fields.",
    )


class RuleErrorSerializer(ErrorSerializer):
    rule = serializers.CharField(help_text="The first failing gate or rule.")
    failed = GateSerializer(many=True, required=False)


ERRORS = {
    400: OpenApiResponse(ValidationErrorSerializer, description="Invalid input; `fields` names the fields."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed for the caller."),
    404: OpenApiResponse(ErrorSerializer, description="Unknown, or of a site the caller does not see."),
    409: OpenApiResponse(ErrorSerializer, description="The RFC is not in a state that allows this."),
}


class ApiPagination(PageNumberPagination):
    """Bounded pages: a page costs the same queries whatever the table holds."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def check_uuid(value: str) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None
