"""DRF throttles keyed by the portal's one client-address rule (core/clientip.py), never by a
client-supplied X-Forwarded-For."""

from rest_framework.throttling import AnonRateThrottle

from core.clientip import client_ip


class ClientAddressMixin:
    def get_ident(self, request):
        return client_ip(request) or "unknown"


class LoginThrottle(ClientAddressMixin, AnonRateThrottle):
    rate = "20/min"
