"""The client's address: the one rule the audit trail, the lockout and the API throttles share.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only when the peer
(REMOTE_ADDR) is one of the reverse proxies named in TRUSTED_PROXIES (CIDRs). The header is then
read from the right: each hop a trusted proxy added is skipped, and the first address not in the
list is the client. With no trusted proxies (the default) the answer is REMOTE_ADDR, whatever the
headers say.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR (e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return tuple(networks)


def _address(value: str | None):
    if not value:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:51234"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_ip(request) -> str | None:
    """The client's address for `request` (a Django or DRF request), or None when unknown."""
    meta = request.META
    peer = _address(meta.get("REMOTE_ADDR"))
    if peer is None:
        return None
    networks = trusted_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    if not networks or not _trusted(peer, networks):
        return str(peer)
    hops = [hop for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    client = peer
    while hops and _trusted(client, networks):
        hop = _address(hops.pop())
        if hop is None:  # a malformed hop: stop at the last proxy we trust
            break
        client = hop
    return str(client)
