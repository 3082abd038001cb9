"""What a webhook posts: the event's facts, shaped for a generic receiver, Slack or Microsoft Teams.

- JSON: `{"event", "label", "urgent", "occurred_at", "summary", "url", "rfc": {…}, "site",
  "deployment": {…} | null, "data": {…}}`.
- Slack incoming webhook: `text` (the fallback every client shows) and Block Kit `blocks` (a `section`
  with mrkdwn text and a button to the portal).
- Teams workflow webhook: a `message` whose one attachment is an Adaptive Card 1.4 (`TextBlock`s, a
  `FactSet`, an `Action.OpenUrl`).
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation

from core import links


def facts(event) -> dict:
    """The event as plain data, read once, inside the act's transaction. In English whatever language
    the actor reads: a machine, or a channel shared by many, receives it."""
    with translation.override(None):
        return _facts(event)


def _facts(event) -> dict:
    rfc = event.rfc
    deployment = event.deployment
    if deployment is not None:
        path = reverse("releases:deployment", args=[rfc.uuid, deployment.uuid])
        site = deployment.environment.site.code
    else:
        path = reverse("releases:detail", args=[rfc.uuid])
        site = ", ".join(sorted(i.site.code for i in rfc.impacts.all()))
    where = f" on {deployment.environment}" if deployment is not None else ""
    return {
        "event": event.key,
        "label": str(event.kind.label),
        "urgent": event.kind.urgent,
        "occurred_at": event.occurred_at.isoformat(),
        "summary": f"{rfc.number} {rfc.title}: {event.kind.label}{where}",
        "url": links.absolute_url(path),
        "rfc": {"number": rfc.number, "title": rfc.title, "state": rfc.state, "release": str(rfc.release)},
        "site": site,
        "deployment": None
        if deployment is None
        else {
            "uuid": str(deployment.uuid),
            "environment": str(deployment.environment),
            "state": deployment.state,
        },
        "actor": event.actor.get_username() if event.actor is not None else None,
        "data": {key: str(value) for key, value in event.data.items()},
    }


def _details(data: dict) -> list[tuple[str, str]]:
    shown = [("Site", data["site"]), ("Release", data["rfc"]["release"])]
    if data["deployment"]:
        shown.append(("Environment", data["deployment"]["environment"]))
    shown += [(key.capitalize(), value[:500]) for key, value in data["data"].items() if value]
    return shown


def slack(data: dict) -> dict:
    urgent = ":rotating_light: *URGENT* " if data["urgent"] else ""
    details = "\n".join(f"*{label}:* {value}" for label, value in _details(data))
    return {
        "text": f"{'URGENT: ' if data['urgent'] else ''}{data['summary']}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{urgent}*{data['summary']}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details or " "}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Plant Change Control"},
                        "url": data["url"],
                    }
                ],
            },
        ],
    }


def teams(data: dict) -> dict:
    body = [
        {
            "type": "TextBlock",
            "text": data["summary"],
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            **({"color": "Attention"} if data["urgent"] else {}),
        },
        {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in _details(data)]},
    ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": [
                        {
                            "type": "Action.OpenUrl",
                            "title": "Open in Plant Change Control",
                            "url": data["url"],
                        }
                    ],
                },
            }
        ],
    }


def shaped(data: dict, format: str) -> dict:
    return {"slack": slack, "teams": teams}.get(format, lambda d: d)(data)
