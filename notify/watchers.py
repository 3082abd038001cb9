"""Watching an RFC: the author, approvers, people mentioned in a comment and those who chose to."""

from __future__ import annotations

from django.db.models import Value

from notify.models import Mute, Watcher, WatchReason


def watch(user, rfc, reason: str = WatchReason.CHOSE) -> bool:
    """Make `user` a watcher of `rfc` (idempotent; the first reason stays). True if newly watching."""
    _, created = Watcher.objects.get_or_create(rfc=rfc, user=user, defaults={"reason": reason})
    return created


def unwatch(user, rfc) -> bool:
    return Watcher.objects.filter(rfc=rfc, user=user).delete()[0] > 0


def watching(user, rfc) -> bool:
    return Watcher.objects.filter(rfc=rfc, user=user).exists()


def watchers(rfc) -> list:
    return [
        w.user for w in Watcher.objects.filter(rfc=rfc).select_related("user").order_by("created_at", "id")
    ]


def mute(user, rfc) -> bool:
    _, created = Mute.objects.get_or_create(rfc=rfc, user=user)
    return created


def unmute(user, rfc) -> bool:
    return Mute.objects.filter(rfc=rfc, user=user).delete()[0] > 0


def muted_ids(rfc) -> set[int]:
    return set(Mute.objects.filter(rfc=rfc).values_list("user_id", flat=True))


def state(user, rfc) -> dict[str, bool]:
    """Whether `user` follows and whether they muted `rfc` (for its page), in one query."""
    found = (
        Watcher.objects.filter(rfc=rfc, user=user)
        .order_by()
        .values_list(Value("watching"))
        .union(Mute.objects.filter(rfc=rfc, user=user).order_by().values_list(Value("muted")), all=True)
    )
    held = {kind for (kind,) in found}
    return {"watching": "watching" in held, "muted": "muted" in held}
