"""Request context for the audit trail: a request id, the client address and the actor."""

from __future__ import annotations

import re
import uuid

from core.clientip import client_ip
from core.context import RequestContext, enter, leave

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
