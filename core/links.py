"""Absolute addresses for links that leave the page: mails, chat messages, feeds, webhooks.

`SITE_URL`, when it is set, wins: a production portal behind a proxy names its public address and
links never depend on a request's Host header. Without it, a link made while answering a request uses
that request's scheme and host (ALLOWED_HOSTS has vetted the host), so `make run` on any port gives
working links; work done outside a request (a worker, beat, a command) falls back to the local
address on PORT. `make run` sets SITE_URL from PORT for all its processes, so mails sent by workers
carry the same address as the pages.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings

from core.context import current_context


def base_url(request=None) -> str:
    """The portal's address without a trailing slash."""
    configured = getattr(settings, "SITE_URL", "")
    if configured:
        return configured.rstrip("/")
    if request is None:
        context = current_context()
        request = context.request if context is not None else None
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"


def absolute_url(path: str, request=None) -> str:
    """`path` (from `reverse()`, starting with "/") as an absolute address."""
    return base_url(request) + path


def stable_host() -> str:
    """A host name for identifiers that must not change with the address a page was reached by
    (calendar UIDs, mail Message-IDs): SITE_URL's host, else a fixed name."""
    return urlsplit(getattr(settings, "SITE_URL", "")).hostname or "plant-change-control"
