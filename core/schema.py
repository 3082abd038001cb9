"""The OpenAPI schema says which errors each operation can answer, with the one error body.

drf-spectacular documents the success response of each operation; the errors come from the exception
handler (changecontrol/api.py) and the JSON error middleware (changecontrol/api_errors.py), the same
for every operation. This schema class adds them where they can happen, unless a view documents the
status itself:

- 400: the operation takes a body or query parameters or changes something (validation, parse and
  input errors);
- 401 and 403: the operation needs a signed-in caller (no or a bad token; a role the caller lacks);
- 404: a path parameter (unknown, or of a site the caller does not see), or a page past the last;
- 409 and 422: a signed-in caller changes something (the object's state refuses it; a rule does);
- 413: the body is multipart (an upload over the limit);
- 429: the view throttles its callers.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny

from core.api import ErrorSerializer, RuleErrorSerializer, ValidationErrorSerializer

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DESCRIPTIONS = {
    "400": "Invalid input; for a field, `fields` names it.",
    "401": "No valid credentials (a missing, unknown or expired token).",
    "403": "The caller's roles do not allow this.",
    "404": "Unknown, of a site the caller does not see, or a page past the last.",
    "409": "The object is not in a state that allows this.",
    "413": "The request body is larger than the limit.",
    "422": "A rule refuses this; `rule` names it (and `failed` the failing gates).",
    "429": "Too many requests; retry after the time in the Retry-After header.",
}


class PortalAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for status, serializer in self._possible_errors(operation).items():
            if status not in responses:
                component = self.resolve_serializer(serializer, "response")
                responses[status] = {
                    "content": {"application/json": {"schema": component.ref}},
                    "description": DESCRIPTIONS[status],
                }
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _possible_errors(self, operation: dict) -> dict:
        errors = {}
        parameters = operation.get("parameters", [])
        body = operation.get("requestBody")
        needs_caller = self._needs_caller()
        changes = self.method in _MUTATING and needs_caller
        if body or changes or any(parameter.get("in") == "query" for parameter in parameters):
            errors["400"] = ValidationErrorSerializer
        if needs_caller:
            errors["401"] = ErrorSerializer
            errors["403"] = ErrorSerializer
        if "{" in self.path or any(parameter.get("name") == "page" for parameter in parameters):
            errors["404"] = ErrorSerializer
        if changes:
            errors["409"] = ErrorSerializer
            errors["422"] = RuleErrorSerializer
        if body and "multipart/form-data" in body.get("content", {}):
            errors["413"] = ErrorSerializer
        if self.view.get_throttles():
            errors["429"] = ErrorSerializer
        return errors

    def _needs_caller(self) -> bool:
        permissions = self.view.get_permissions()
        return bool(permissions) and not all(isinstance(p, AllowAny) for p in permissions)
