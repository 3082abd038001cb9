"""Approval policies, per-RFC chains, electronic signatures, email links and absences.

PRODUCT.md A1–A6; 21 CFR Part 11 §11.50 (signature manifestation), §11.70 (signature bound to
the record: `content_hash`), §11.200 (password re-entered at every signing).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from core.inputs import no_line_breaks
from core.roles import Role
from environments.models import Site
from releases.models import Rfc
from releases.versioning import ChangeClass


class StepRule(models.TextChoices):
    ALL = "all", gettext_lazy("All roles sign")
    ANY = "any", gettext_lazy("Any one role signs")


def validate_roles(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError(_("Name at least one role."))
    unknown = [item for item in value if item not in Role.values]
    if unknown:
        raise ValidationError(_("Unknown role(s): %(roles)s.") % {"roles": ", ".join(map(str, unknown))})
    if len(set(value)) != len(value):
        raise ValidationError(_("A role is named twice."))


def role_labels(values) -> str:
    return " + ".join(str(Role(value).label) for value in values)


class ApprovalPolicy(models.Model):
    """The ordered chain of steps one class of change needs (A1–A3)."""

    change_class = models.CharField(max_length=5, choices=ChangeClass.choices, unique=True)
    description = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["change_class"]
        verbose_name_plural = gettext_lazy("approval policies")

    def __str__(self) -> str:
        return f"{self.get_change_class_display()} policy"


class PolicyStep(models.Model):
    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    roles = models.JSONField(
        validators=[validate_roles], help_text=gettext_lazy('Role values, e.g. ["cio", "plant_director"].')
    )
    rule = models.CharField(max_length=3, choices=StepRule.choices, default=StepRule.ALL)

    class Meta:
        ordering = ["policy", "order"]
        constraints = [models.UniqueConstraint(fields=["policy", "order"], name="one_step_per_order")]

    def __str__(self) -> str:
        return f"{self.order}. {role_labels(self.roles)} ({self.rule})"


class RoundState(models.TextChoices):
    OPEN = "open", gettext_lazy("Open")
    APPROVED = "approved", gettext_lazy("Approved")
    REJECTED = "rejected", gettext_lazy("Rejected")
    WITHDRAWN = "withdrawn", gettext_lazy("Withdrawn")


class RoundPurpose(models.TextChoices):
    APPROVAL = "approval", gettext_lazy("Approval")
    REVIEW = "review", gettext_lazy("Post-implementation review")


class ApprovalRound(models.Model):
    """One pass of an RFC through its chain: created at submission, closed by the last step,
    a rejection or a withdrawal."""

    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="approval_rounds")
    number = models.PositiveSmallIntegerField()
    change_class = models.CharField(max_length=5, choices=ChangeClass.choices)
    high_risk = models.BooleanField(default=False)
    content_hash = models.CharField(
        max_length=64, help_text=gettext_lazy("SHA-256 of the RFC's content at submission.")
    )
    state = models.CharField(max_length=10, choices=RoundState.choices, default=RoundState.OPEN)
    purpose = models.CharField(max_length=8, choices=RoundPurpose.choices, default=RoundPurpose.APPROVAL)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text=gettext_lazy("A post-implementation review is due by then.")
    )
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rfc", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rfc", "number"], name="one_round_number"),
            models.UniqueConstraint(fields=["rfc"], condition=Q(state="open"), name="one_open_round"),
        ]

    def __str__(self) -> str:
        return f"{self.rfc.number} {self.get_purpose_display().lower()} round {self.number}"

    @property
    def is_review(self) -> bool:
        return self.purpose == RoundPurpose.REVIEW

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number


class StepState(models.TextChoices):
    WAITING = "waiting", gettext_lazy("Waiting for the previous step")
    PENDING = "pending", gettext_lazy("Pending")
    APPROVED = "approved", gettext_lazy("Approved")
    REJECTED = "rejected", gettext_lazy("Rejected")
    CLOSED = "closed", gettext_lazy("Closed")


class ApprovalStep(models.Model):
    round = models.ForeignKey(ApprovalRound, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    roles = models.JSONField()
    rule = models.CharField(max_length=3, choices=StepRule.choices)
    note = models.CharField(
        max_length=120, blank=True, help_text=gettext_lazy("Why the step is there, e.g. high risk.")
    )
    state = models.CharField(max_length=8, choices=StepState.choices, default=StepState.WAITING)
    activated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "order"]
        constraints = [models.UniqueConstraint(fields=["round", "order"], name="one_round_step_per_order")]

    def __str__(self) -> str:
        return f"step {self.order}: {role_labels(self.roles)}"

    @property
    def label(self) -> str:
        word = (
            pgettext("roles that all sign", "and")
            if self.rule == StepRule.ALL
            else pgettext("roles, one signs", "or")
        )
        joiner = f" {word} "
        return joiner.join(str(Role(value).label) for value in self.roles)


class ApprovalState(models.TextChoices):
    WAITING = "waiting", gettext_lazy("Waiting")
    PENDING = "pending", gettext_lazy("Pending")
    APPROVED = "approved", gettext_lazy("Approved")
    REJECTED = "rejected", gettext_lazy("Rejected")
    CHANGES = "changes", gettext_lazy("Changes requested")
    NOT_NEEDED = "not_needed", gettext_lazy("Not needed")
    CLOSED = "closed", gettext_lazy("Closed")


class Approval(models.Model):
    """One role's decision at one site within a step: what an approver is asked to sign."""

    step = models.ForeignKey(ApprovalStep, on_delete=models.CASCADE, related_name="approvals")
    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="approvals")
    role = models.CharField(max_length=20, choices=Role.choices)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=10, choices=ApprovalState.choices, default=ApprovalState.WAITING)
    notify_due = models.BooleanField(
        default=False, help_text=gettext_lazy("Approvers still to be emailed (outbox).")
    )
    notified_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step", "site__code", "role"]
        constraints = [
            models.UniqueConstraint(fields=["step", "role", "site"], name="one_approval_per_role_site")
        ]
        indexes = [
            models.Index(fields=["state", "role"], name="approval_state_role_idx"),
            models.Index(fields=["site", "decided_at"], name="approval_site_decided_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rfc.number}: {self.get_role_display()} at {self.site.code}"

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number

    @property
    def audit_site_code(self) -> str:
        return self.site.code


class Decision(models.TextChoices):
    APPROVE = "approve", gettext_lazy("Approved")
    # Back to the author with a question; the round ends without approval, like a rejection.
    CHANGES = "changes", gettext_lazy("Changes requested")
    REJECT = "reject", gettext_lazy("Rejected")


class Signature(models.Model):
    """An electronic signature (§11.50): who, printed name, when (UTC), meaning, bound to content."""

    approval = models.ForeignKey(Approval, on_delete=models.PROTECT, related_name="signatures")
    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    printed_name = models.CharField(max_length=150)
    signed_at = models.DateTimeField()
    decision = models.CharField(max_length=7, choices=Decision.choices)
    meaning = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    # What the signer saw (approvals.services.signed_content): the next signer is shown what changed since.
    content = models.JSONField(default=dict, blank=True)
    via = models.CharField(max_length=10, default="portal")  # portal, email, api
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [
            # Two approvers racing on one approval: the database keeps exactly one signature.
            models.UniqueConstraint(
                fields=["approval"],
                condition=Q(voided_at__isnull=True),
                name="one_live_signature_per_approval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.printed_name}: {self.meaning}"

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number


class EmailLink(models.Model):
    """A single-use link from an approval email (A5). Only the SHA-256 of the token is stored."""

    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    content_hash = models.CharField(max_length=64)
    purpose = models.CharField(max_length=10, default="request")  # request, reminder
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"link for {self.user} on {self.approval}"


class Absence(models.Model):
    """An approver away; the delegate, holding the same role, signs on their behalf."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="absences")
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="absence_ends_after_start"
            ),
            models.CheckConstraint(condition=~Q(user=models.F("delegate")), name="absence_delegate_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.user} away, {self.delegate} signs"


# --- Standard changes (ITIL change models) -------------------------------------------------------
class StandardChangeState(models.TextChoices):
    PROPOSED = "proposed", gettext_lazy("Awaiting approval")
    ACTIVE = "active", gettext_lazy("Active")
    SUSPENDED = "suspended", gettext_lazy("Suspended")


class StandardChange(models.Model):
    """A pre-approved template for routine work (e.g. "label template update"): approved once through
    the normal chain of its highest class, then RFCs that match its scope skip the approval chain —
    never the gates, the windows or the evidence (approvals/standard.py)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120, validators=[no_line_breaks])
    description = models.TextField(
        help_text=gettext_lazy("The routine work it covers and how it is done safely.")
    )
    products = models.JSONField(default=list, help_text=gettext_lazy('The products it covers, e.g. ["MES"].'))
    sites = models.ManyToManyField(Site, related_name="+")
    max_class = models.CharField(
        gettext_lazy("highest class"), max_length=5, choices=ChangeClass.choices, default=ChangeClass.PATCH
    )
    expires_at = models.DateTimeField(
        help_text=gettext_lazy("After this, matching RFCs go through the chain again.")
    )
    state = models.CharField(
        max_length=10, choices=StandardChangeState.choices, default=StandardChangeState.PROPOSED
    )
    content_hash = models.CharField(
        max_length=64, editable=False, help_text=gettext_lazy("What the signers approved.")
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspend_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["name", "-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_object_id(self) -> str:
        return str(self.uuid)


class StandardChangeSignature(models.Model):
    """One signature of the template's chain: the signer's role, re-entered password, the content."""

    template = models.ForeignKey(StandardChange, on_delete=models.PROTECT, related_name="signatures")
    role = models.CharField(max_length=40, choices=Role.choices)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["signed_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["template", "role"], name="one_signature_per_role")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} for {self.template}"


class StandardChangeUse(models.Model):
    """An RFC approved by a standard change instead of the chain: listed on the template, audited."""

    template = models.ForeignKey(StandardChange, on_delete=models.PROTECT, related_name="uses")
    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="standard_uses")
    round = models.OneToOneField(ApprovalRound, on_delete=models.PROTECT, related_name="standard_use")
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    used_at = models.DateTimeField()

    class Meta:
        ordering = ["-used_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.rfc} as {self.template}"
