"""How events reach chat: the site's webhooks (by their event filter) and people who chose chat."""

from __future__ import annotations

from hooks.delivery import queue
from hooks.models import ChatEndpoint, Webhook
from hooks.payloads import facts
from notify.events import Event


def site_webhooks(event: Event) -> None:
    """A delivery per matching active webhook of the event's site(s), in the act's transaction."""
    if event.deployment is not None:
        sites = [event.deployment.environment.site_id]
    else:
        sites = list(event.rfc.impacts.values_list("site_id", flat=True))
    hooks = [hook for hook in Webhook.objects.filter(site_id__in=sites, active=True) if hook.wants(event.key)]
    if not hooks:
        return
    data = facts(event)
    for hook in hooks:
        queue(url=hook.url, format=hook.format, kind=event.key, data=data, webhook=hook)


def personal_chat(user, event: Event) -> bool:
    """Post to the person's own chat address; False when they have none (they get mail instead)."""
    endpoint = ChatEndpoint.objects.filter(user=user).first()
    if endpoint is None:
        return False
    queue(url=endpoint.url, format=endpoint.format, kind=event.key, data=facts(event), user=user)
    return True
