"""Commenting on an RFC: @mentions tell people (and make them watchers); edits keep history; all audited.

A mention is `@username` not preceded by a word character, `@` or `.` (so mail addresses are not
mentions), matched case-insensitively against active users who may see the RFC; other names stay plain
text and are reported back as "not notified".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from audit.services import record
from core import clock
from discussion.models import MAX_LENGTH, Comment, CommentRevision
from notify import events, watchers
from notify.models import WatchReason
from releases.models import Rfc
from releases.services import visible_rfcs

MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_][A-Za-z0-9_.+-]{0,149})")


def mentioned_names(body: str) -> list[str]:
    """Names after @, in order, without trailing punctuation, each once (case-insensitive)."""
    seen: dict[str, str] = {}
    for match in MENTION.finditer(body):
        name = match.group(1).rstrip(".-+")
        if name and name.lower() not in seen:
            seen[name.lower()] = name
    return list(seen.values())


@dataclass
class Mentions:
    told: list  # users
    not_told: list[str]  # names nobody (allowed to see the RFC) answers to


def resolve(rfc: Rfc, names: list[str]) -> Mentions:
    users = {
        u.username.lower(): u for u in get_user_model().objects.filter(is_active=True, username__in=names)
    }
    if len(users) < len(names):  # case-insensitive fallback for the rest
        for name in names:
            if name.lower() not in users:
                found = get_user_model().objects.filter(is_active=True, username__iexact=name).first()
                if found is not None:
                    users[name.lower()] = found
    told, not_told = [], []
    for name in names:
        user = users.get(name.lower())
        if user is not None and visible_rfcs(user).filter(pk=rfc.pk).exists():
            told.append(user)
        else:
            not_told.append(name)
    return Mentions(told, not_told)


def _clean(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": _("Write something to comment.")})
    if "\x00" in body:
        raise ValidationError({"body": _("The comment contains a NUL character.")})
    if len(body) > MAX_LENGTH:
        raise ValidationError(
            {
                "body": _("A comment holds at most %(max)s characters.")
                % {"max": number_format(MAX_LENGTH, force_grouping=True)}
            }
        )
    return body


def add(user, rfc: Rfc, body: str) -> tuple[Comment, Mentions]:
    body = _clean(body)
    if not visible_rfcs(user).filter(pk=rfc.pk).exists():
        raise PermissionDenied(_("You may not comment on this RFC."))
    with transaction.atomic():
        mentions = resolve(rfc, mentioned_names(body))
        comment = Comment.objects.create(
            rfc=rfc, author=user, body=body, mentions=[u.username for u in mentions.told]
        )
        record(
            "discussion.comment.added",
            comment,
            actor=user,
            after={"comment": comment.pk, "body": body, "mentions": comment.mentions},
        )
        watchers.watch(user, rfc, WatchReason.COMMENTED)
        excerpt = body if len(body) <= 300 else body[:297] + "…"
        data = {"comment": comment.pk, "excerpt": excerpt}
        # Watchers hear of the comment; the people it names hear that they were named (not twice).
        events.emit("comment.added", rfc, actor=user, data=data, people={"except": mentions.told})
        if mentions.told:
            for person in mentions.told:
                watchers.watch(person, rfc, WatchReason.MENTIONED)
            events.emit("comment.mentioned", rfc, actor=user, data=data, people={"mentioned": mentions.told})
    return comment, mentions


def edit(user, comment: Comment, body: str) -> Comment:
    body = _clean(body)
    with transaction.atomic():
        locked = Comment.objects.select_for_update().select_related("rfc").get(pk=comment.pk)
        if locked.author_id != user.pk:
            raise PermissionDenied(_("Only its author may edit a comment."))
        if body == locked.body:
            return locked
        CommentRevision.objects.create(
            comment=locked, body=locked.body, edited_by=user, edited_at=clock.now()
        )
        before = locked.body
        locked.body, locked.edited_at = body, clock.now()
        locked.save(update_fields=["body", "edited_at"])
        record(
            "discussion.comment.edited",
            locked,
            actor=user,
            before={"comment": locked.pk, "body": before},
            after={"comment": locked.pk, "body": body},
        )
    return locked
