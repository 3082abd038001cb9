"""Absolute addresses for links that leave the page: mails, chat messages, feeds, webhooks.

`absolute_url(path, request)` uses `SITE_URL` when it is set, and otherwise the incoming request's
scheme and host (so `make run` on any port gives working links). Code without a request (workers,
beat) uses `SITE_URL`, which `make run` derives from `PORT`.
"""

from __future__ import annotations

from django.conf import settings


def base_url(request=None) -> str:
    """The portal's address without a trailing slash."""
    configured = getattr(settings, "SITE_URL", "")
    if configured:
        return configured.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return "http://127.0.0.1:8000"


def absolute_url(path: str, request=None) -> str:
    """`path` (from `reverse()`, starting with "/") as an absolute address."""
    return base_url(request) + path
