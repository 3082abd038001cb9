"""API plumbing: one error shape, {"detail": ..., "code": ...} (the token endpoint is in accounts/api.py)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import RuleViolation, StateConflict
from core.refusals import refusal


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


class RuleRefused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "A rule refuses this."
    default_code = "rule"


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(
            f"{key}: {_flatten(value)}" if key != "non_field_errors" else _flatten(value)
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    """The API's side of the one refusal mapping (core/refusals.py): the same status as the pages."""
    too_large = isinstance(exc, DjangoValidationError) and getattr(exc, "code", None) == "too_large"
    if isinstance(exc, StateConflict | RuleViolation) or too_large:
        refused = refusal(exc)
        body = {"detail": refused.message, "code": refused.code}
        if isinstance(exc, RuleViolation):
            body["rule"] = refused.rule
            if refused.failed:
                body["failed"] = refused.failed
        return Response(body, status=refused.status)
    if isinstance(exc, RequestDataTooBig):  # a form field over DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": "The request body is larger than the limit.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):  # e.g. too many fields or files in a form
        exc = exceptions.ParseError(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    code = (
        codes
        if isinstance(codes, str)
        else ("invalid" if isinstance(exc, exceptions.ValidationError) else "error")
    )
    body = {
        "detail": _flatten(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc),
        "code": code,
    }
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["fields"] = exc.detail
    response.data = body
    return response
