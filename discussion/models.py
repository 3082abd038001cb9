"""Comments on an RFC. Never edited silently: each edit keeps the words it replaced."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from core import clock

MAX_LENGTH = 10_000


class Comment(models.Model):
    rfc = models.ForeignKey("releases.Rfc", on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    mentions = models.JSONField(
        default=list, blank=True, help_text=gettext_lazy("Usernames told of this comment.")
    )
    created_at = models.DateTimeField(default=clock.now)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["rfc", "created_at"], name="discussion_comment_rfc_idx")]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.rfc_id}"

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number

    @property
    def audit_site_code(self) -> str:
        return ""


class CommentRevision(models.Model):
    """The text a comment had before one edit."""

    comment = models.ForeignKey(Comment, on_delete=models.PROTECT, related_name="revisions")
    body = models.TextField()
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    edited_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["edited_at", "id"]

    def __str__(self) -> str:
        return f"revision of comment {self.comment_id}"
