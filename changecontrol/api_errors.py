"""Under /api/ every error is JSON with the one error body, {"detail": ..., "code": ...}.

DRF's views answer their own errors that way (changecontrol/api.py exception_handler). What reaches a
client from elsewhere is HTML or YAML: the URL resolver's 404 for an unknown path (/api/, /api/v1/nope/),
Django's error pages (handler400/403/404/500), the schema view's 405 rendered as YAML, the Swagger
page's 405 as text. This middleware turns any such error response under /api/ into the standard body,
keeping its status and headers (Allow, Retry-After, ...). Pages keep their HTML error pages.
"""

from __future__ import annotations

from http import HTTPStatus

from django.conf import settings
from django.http import JsonResponse

API_PREFIX = "/api/"

# status -> (detail, code); the same words and codes DRF uses for its own exceptions.
_ERRORS = {
    400: ("Malformed request.", "bad_request"),
    403: ("You do not have permission to perform this action.", "permission_denied"),
    404: ("Not found.", "not_found"),
    413: ("The request body is larger than the limit.", "too_large"),
    500: ("A server error occurred.", "server_error"),
}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID", "Vary")


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_body(request, status: int) -> dict[str, str]:
    if status == 405:
        return {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"}
    if status in _ERRORS:
        detail, code = _ERRORS[status]
    else:
        try:
            detail, code = HTTPStatus(status).phrase + ".", "error"
        except ValueError:
            detail, code = "Error.", "error"
    return {"detail": detail, "code": code}


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


class ApiErrorsAsJsonMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not is_api(request) or _is_json(response):
            return response
        if response.status_code >= 500 and settings.DEBUG:
            return response  # the developer's traceback page
        replaced = JsonResponse(error_body(request, response.status_code), status=response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                replaced[header] = response[header]
        return replaced
