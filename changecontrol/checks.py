"""Deployment checks of the portal as a whole (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def site_url(app_configs=None, **kwargs):
    """Without SITE_URL, links in mails, chat and feeds follow the Host of the request that caused
    them, and a worker falls back to a local address: production names its public address."""
    if settings.SITE_URL:
        return []
    return [
        checks.Warning(
            "SITE_URL is not set: links in mails, chat messages, webhooks and calendar feeds sent by "
            "workers would point at a local address.",
            hint="Set SITE_URL to the portal's public address, e.g. https://change.plant.example.",
            id="changecontrol.W001",
        )
    ]
