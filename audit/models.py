"""The audit trail: append-only, hash-chained (C1).

Each event stores the previous event's hash and its own hash over its canonical content, so an
edited, deleted or inserted row breaks the chain (`manage.py audit_verify`). On PostgreSQL
triggers refuse UPDATE, DELETE and TRUNCATE on the table (migration 0002).
"""

from django.db import models

from audit.chain import GENESIS_HASH

__all__ = ["GENESIS_HASH", "AuditEvent", "ChainHead"]


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True, editable=False)
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    # The actor's name as text survives the user's deletion (netbox's change log).
    actor_name = models.CharField(max_length=150, blank=True, editable=False)
    action = models.CharField(max_length=100, db_index=True, editable=False)
    object_type = models.CharField(max_length=100, blank=True, editable=False)
    object_id = models.CharField(max_length=64, blank=True, editable=False)
    object_repr = models.CharField(max_length=200, blank=True, editable=False)
    site_code = models.CharField(max_length=20, blank=True, editable=False)
    before = models.JSONField(null=True, blank=True, editable=False)
    after = models.JSONField(null=True, blank=True, editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True, editable=False)
    reason = models.TextField(blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, unique=True, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "seq"], name="audit_object_idx"),
            models.Index(fields=["actor_id", "seq"], name="audit_actor_idx"),
            # The trail page's filters, each with the keyset column (fast on millions of events).
            models.Index(fields=["object_id", "seq"], name="audit_object_id_seq_idx"),
            models.Index(fields=["site_code", "seq"], name="audit_site_seq_idx"),
            models.Index(fields=["actor_name", "seq"], name="audit_actor_name_seq_idx"),
            models.Index(fields=["action", "seq"], name="audit_action_seq_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    @property
    def action_name(self) -> str:
        """The action as it reads today (audit/actions.py), whatever spelling the row was written with."""
        from audit.actions import canonical

        return canonical(self.action)

    @property
    def action_label(self) -> str:
        """The action in words, for pages (the code stays in exports and the page's markup)."""
        from audit.actions import label

        return label(self.action)


class ChainHead(models.Model):
    """The head of one lane (id 1..64): an independent hash chain that one writer at a time locks and
    appends to, so writers in different lanes do not wait on each other; seq is the number of events
    in the lane, hash its last event's hash (or the lane's genesis). Lane 1 is the chain written
    before lanes existed (docs/audit-chain.md, "Writers without a global lock")."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id__gte=1, id__lte=64), name="audit_single_head")
        ]

    def __str__(self) -> str:
        return f"lane {self.id} head #{self.seq}"
