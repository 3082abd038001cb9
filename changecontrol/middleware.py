"""Request context for the audit trail: a request id, the client address and the actor."""

from __future__ import annotations

import json
import logging
import re
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from core.clientip import client_ip
from core.context import RequestContext, enter, leave
from core.inputs import NUL, NUL_MESSAGE, BadInput, has_nul, nul_field

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id
        token = enter(RequestContext(request_id, client_ip(request), request))
        try:
            response = self.get_response(request)
        finally:
            leave(token)
        response["X-Request-ID"] = request_id
        return response


# --- Bad input is a 400, never a 500 --------------------------------------------------------
logger = logging.getLogger("changecontrol.input")
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


class InputGuardMiddleware:
    """One guard, early in the chain, for input nothing behind it can take (core/inputs.py):

    - a NUL character in the path, a header, the query string, a form field or an uploaded file's
      name (not its contents, which are binary), or anywhere in a JSON body;
    - a body its parser refuses (malformed multipart or JSON, too many fields), or one over the limit;
    - BadInput, and the OverflowError of date arithmetic, raised by a view.

    The answer is the standard refusal: JSON `{"detail", "code"}` under /api/, the 400 page elsewhere.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Ahead of the locale middleware: a refusal here speaks the browser's language.
        with translation.override(translation.get_language_from_request(request)):
            refused = _refused(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, BadInput):
            return bad_request(request, exception.message, params=exception.params)
        if isinstance(exception, OverflowError):  # date arithmetic past year 1 or 9999
            logger.warning("Refused input that overflowed: %s %s", request.method, request.path)
            return bad_request(request, gettext_noop("A value is out of range."))
        return None


def bad_request(
    request,
    message: str,
    field: str | None = None,
    status: int = 400,
    code: str = "invalid",
    params: dict | None = None,
):
    """The standard refusal for bad input: JSON under /api/ (with `fields` naming the field, as the
    API's own validation does), the error page elsewhere.

    `message` is English (marked with gettext_noop by the caller), with `%(name)s` placeholders
    filled from `params`: the API answers in English, the page in the person's language."""
    if request.path_info.startswith("/api/"):
        message = message % params if params else message
        body = {"detail": f"{field}: {message}" if field else message, "code": code}
        if field:
            body["fields"] = {field: [message]}
        return JsonResponse(body, status=status)
    message = gettext(message) % params if params else gettext(message)
    detail = f"{field}: {message}" if field else message
    return render(request, "errors/400.html", {"message": detail}, status=status)


def body_limit() -> int:
    """The largest body any view takes: the largest upload (an artifact or an evidence file) plus the
    form fields around it."""
    return (
        max(settings.ARTIFACT_MAX_BYTES, settings.EVIDENCE_MAX_BYTES) + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    )


def _declared_too_big(request) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > body_limit()
    except ValueError:
        return False


def _refused(request):
    """The refusal for a request no view should see, or None."""
    if _declared_too_big(request):
        # Refused on its Content-Length, before a byte of the body is read or spooled to a temp file
        # (FAULTS 13: a 2 GB upload never reaches the parser).
        return bad_request(
            request, gettext_noop("The request body is larger than the limit."), status=413, code="too_large"
        )
    if NUL in request.path_info:
        return bad_request(request, gettext_noop("The address contains a null character."))
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            header = key[5:].replace("_", "-").title()
            return bad_request(
                request,
                gettext_noop("The %(header)s header contains a null character."),
                params={"header": header},
            )
    cookie = nul_field(request.COOKIES)  # a cookie's octal escapes decode to NUL here
    if cookie is not None:
        return bad_request(
            request,
            gettext_noop("The %(cookie)s cookie contains a null character."),
            params={"cookie": cookie},
        )
    try:
        return _refused_data(request)
    except RequestDataTooBig:
        return bad_request(
            request, gettext_noop("The request body is larger than the limit."), status=413, code="too_large"
        )
    except (MultiPartParserError, SuspiciousOperation, UnicodeDecodeError) as exc:
        return bad_request(
            request,
            gettext_noop("The request could not be read: %(error)s"),
            code="parse_error",
            params={"error": exc},
        )


def _refused_data(request):
    field = nul_field(request.GET)
    if field is not None:
        return bad_request(request, NUL_MESSAGE, field)
    content_type = request.content_type or ""
    if content_type in _FORMS and request.method in ("POST", "PUT", "PATCH"):
        if content_type == "multipart/form-data" and request.method != "POST":
            # Django parses multipart bodies for POST only; parse PUT and PATCH the same way, once.
            request._post, request._files = request.parse_file_upload(request.META, request)
        if content_type == "multipart/form-data" or request.method == "POST":
            form = request.POST
        else:
            form = QueryDict(request.body, encoding=request.encoding)
        field = nul_field(form)
        if field is None:
            field = next((key for key, upload in request.FILES.items() if NUL in (upload.name or "")), None)
        if field is not None:
            return bad_request(request, NUL_MESSAGE, field)
    elif (content_type == "application/json" or content_type.endswith("+json")) and request.body.strip():
        try:
            data = json.loads(request.body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            return bad_request(
                request,
                gettext_noop("The body is not valid JSON: %(error)s"),
                code="parse_error",
                params={"error": exc},
            )
        field = nul_field(data) if isinstance(data, dict) else None
        if field is not None or has_nul(data):
            return bad_request(request, NUL_MESSAGE, field)
    return None
