"""Releases, RFCs, their evidence and UAT sign-offs (PRODUCT.md R1–R9, C2, X5, X6)."""

from __future__ import annotations

import re
import uuid

import semver
from django.conf import settings
from django.db import models
from django.utils.translation import gettext, gettext_lazy

from core.inputs import no_line_breaks
from environments.models import Site, validate_semver
from releases.states import ENDED_STATES, OPEN_STATES, RfcState
from releases.versioning import ChangeClass


class Release(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    product = models.CharField(
        max_length=100,
        validators=[no_line_breaks],
        help_text=gettext_lazy("Product or module, e.g. MES or ERP-interface."),
    )
    version = models.CharField(max_length=64, validators=[validate_semver])
    notes = models.TextField(gettext_lazy("release notes"), blank=True)
    # The artifact is an uploaded file (stored under a generated name) or a URL plus its checksum.
    artifact_file = models.CharField(max_length=100, blank=True, editable=False)
    artifact_name = models.CharField(max_length=150, blank=True, editable=False)
    artifact_size = models.BigIntegerField(null=True, blank=True, editable=False)
    artifact_url = models.URLField(blank=True)
    # Recorded once, at upload; promotion to every tier checks it (X5).
    artifact_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    migration_sql = models.TextField(
        gettext_lazy("SQL migration"), blank=True, help_text=gettext_lazy("Versioned migration.")
    )
    undo_sql = models.TextField(
        gettext_lazy("undo script"),
        blank=True,
        help_text=gettext_lazy("The exact script that undoes the migration."),
    )
    # Feature flags the release brings (releases/flags.py): switched per site as standard changes.
    flags = models.JSONField(default=list, blank=True)
    # Configuration bundles it carries (environments/config.py) and their checksum, recorded once.
    config = models.JSONField(default=dict, blank=True)
    config_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["product", "version"], name="unique_release_version")]

    def __str__(self) -> str:
        return f"{self.product} {self.version}"

    @property
    def semver(self) -> semver.Version:
        return semver.Version.parse(self.version)

    @property
    def config_only(self) -> bool:
        """Carries configuration and nothing to install or migrate: its checksum is its artifact's."""
        return bool(self.config) and not (
            self.artifact_file or self.artifact_url or self.migration_sql.strip()
        )


class RiskLevel(models.TextChoices):
    LOW = "low", gettext_lazy("Low")
    MEDIUM = "medium", gettext_lazy("Medium")
    HIGH = "high", gettext_lazy("High")


# Every risk question is answered on one scale; the answer times the question's weight counts.
RISK_SCALE = [
    (0, gettext_lazy("None")),
    (1, gettext_lazy("Low")),
    (2, gettext_lazy("Medium")),
    (3, gettext_lazy("High")),
]


class RiskQuestion(models.Model):
    """One question of the risk assessment (GAMP 5: the depth of approval and testing follows the
    risk). Answers go from 0 (none) to 3 (high); the weighted sum gives the RFC's score out of 100."""

    class Computed(models.TextChoices):
        ASKED = "", gettext_lazy("Asked of the author")
        SITES = "sites", gettext_lazy("From the number of target sites")

    key = models.SlugField(
        max_length=40, unique=True, help_text=gettext_lazy("Stable name in the API and the evidence pack.")
    )
    text = models.CharField(max_length=200, validators=[no_line_breaks])
    help_text = models.CharField(max_length=300, blank=True)
    weight = models.PositiveSmallIntegerField(
        default=1, help_text=gettext_lazy("1 to 10: how much the answer counts.")
    )
    computed = models.CharField(max_length=10, choices=Computed.choices, blank=True, default=Computed.ASKED)
    high_at = models.PositiveSmallIntegerField(
        gettext_lazy("high risk from"),
        default=0,
        choices=[(0, gettext_lazy("Never"))] + RISK_SCALE[1:],
        help_text=gettext_lazy("An answer at or above this makes the change high risk whatever the score."),
    )
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.text

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if not 1 <= self.weight <= 10:
            raise ValidationError({"weight": gettext("The weight is between 1 and 10.")})


class RfcCounter(models.Model):
    """Per-year counter behind RFC-2026-0042; locked while a number is taken."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


# An RFC's readable number: RFC-<year>-<sequence> (R1).
RFC_NUMBER = re.compile(r"^RFC-\d{4}-\d{4,}$")


class Rfc(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(max_length=20, unique=True, editable=False)
    # The title goes into mail subjects: no line breaks (header injection; core.inputs).
    title = models.CharField(max_length=200, validators=[no_line_breaks])
    description = models.TextField()
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="rfcs")
    sites = models.ManyToManyField(Site, through="Impact", related_name="rfcs")
    change_class = models.CharField(max_length=5, choices=ChangeClass.choices, editable=False)
    estimated_downtime_minutes = models.PositiveIntegerField(
        default=0, help_text=gettext_lazy("Expected production downtime in minutes.")
    )
    retraining_note = models.TextField(
        blank=True, help_text=gettext_lazy("Operator retraining a major change needs.")
    )
    rollback_plan = models.TextField(help_text=gettext_lazy("The exact undo script or steps."))
    high_risk = models.BooleanField(
        default=False, help_text=gettext_lazy("Treated as high risk whatever the assessment says.")
    )
    # The risk assessment (releases/risk.py): answers by question key, the score out of 100 and the
    # level it gives; empty while a question is unanswered.
    risk_answers = models.JSONField(default=dict, blank=True, editable=False)
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    risk_level = models.CharField(max_length=6, choices=RiskLevel.choices, blank=True, editable=False)
    requested_timing = models.CharField(
        max_length=200, blank=True, help_text=gettext_lazy("When you would like it in PROD.")
    )
    emergency = models.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "Emergency change: approved by the CIO or the Plant Director, may run outside "
            "the windows, reviewed by the normal chain within 5 days."
        ),
    )
    emergency_reason = models.TextField(
        blank=True, help_text=gettext_lazy("Why this cannot wait for a normal window.")
    )
    # The external systems the change touches, by their names in the sites' fidelity registers
    # (environments.models.Dependency): the RFC page and the "Staging gaps accepted" gate read them.
    dependencies = models.JSONField(
        default=list,
        blank=True,
        help_text=gettext_lazy("External systems the change touches (ERP, WMS, Supplier API …)."),
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rfcs")
    state = models.CharField(max_length=12, choices=RfcState.choices, default=RfcState.DRAFT, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = gettext_lazy("RFC")
        indexes = [
            models.Index(fields=["state", "-created_at"], name="rfc_state_idx"),
            models.Index(fields=["author", "-created_at"], name="rfc_author_idx"),
            models.Index(fields=["submitted_at"], name="rfc_submitted_idx"),
            # The RFC list's and the API's order: the first page without sorting every RFC.
            models.Index(fields=["-created_at", "-id"], name="rfc_created_idx"),
            # The home page's lists, the last changed first (E9): approved RFCs to schedule, ended ones
            # to review or close. Only the RFCs in those states, in that order, so the database reads
            # the first rows the user may see and stops instead of sorting every RFC of the states.
            models.Index(
                fields=["-updated_at"],
                condition=models.Q(state=RfcState.APPROVED),
                name="rfc_approved_updated_idx",
            ),
            models.Index(
                fields=["-updated_at"],
                condition=models.Q(state__in=sorted(ENDED_STATES)),
                name="rfc_ended_updated_idx",
            ),
            # The auditor's home: the emergency changes of the last days, counted and listed newest
            # first, read off this small index (about one RFC in fifty) instead of every submitted one.
            models.Index(
                fields=["-submitted_at", "-id"], condition=models.Q(emergency=True), name="rfc_emergency_idx"
            ),
            # The RFC page's other open changes on the same items: which of the RFCs an item index names
            # are open, and their numbers, read off this index alone (a merge with the item index).
            models.Index(
                fields=["id", "number"],
                condition=models.Q(state__in=sorted(OPEN_STATES)),
                name="rfc_open_number_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def audit_object_id(self) -> str:
        return self.number

    @property
    def audit_site_code(self) -> str:
        return ",".join(sorted(impact.site.code for impact in self.impacts.all()))

    @property
    def is_high_risk(self) -> bool:
        """High risk by the assessment or by the author's word: technical and business sign-off (A4)."""
        return self.high_risk or self.risk_level == RiskLevel.HIGH

    def snapshot(self) -> dict:
        content = {
            "title": self.title,
            "description": self.description,
            "release": str(self.release),
            "change_class": self.change_class,
            "estimated_downtime_minutes": self.estimated_downtime_minutes,
            "retraining_note": self.retraining_note,
            "rollback_plan": self.rollback_plan,
            "high_risk": self.high_risk,
            "requested_timing": self.requested_timing,
            "emergency": self.emergency,
            "emergency_reason": self.emergency_reason,
            "impact": [impact.snapshot() for impact in self.impacts.all()],
        }
        if self.dependencies:  # RFCs filed before dependencies were named keep their signed content
            content["dependencies"] = self.dependencies
        if self.risk_answers or self.risk_level:  # RFCs filed before the assessment keep their hash
            content["risk"] = {
                "answers": self.risk_answers,
                "score": self.risk_score,
                "level": self.risk_level,
            }
        return content


class Impact(models.Model):
    """What the change touches at one site (R1): production lines and modules."""

    rfc = models.ForeignKey(Rfc, on_delete=models.CASCADE, related_name="impacts")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    lines = models.JSONField(default=list, help_text=gettext_lazy("Affected production lines."))
    modules = models.JSONField(default=list, help_text=gettext_lazy("Affected modules."))
    interfaces = models.JSONField(
        default=list, blank=True, help_text=gettext_lazy("Affected interfaces (ERP, WMS, scales …).")
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["site__code"]
        constraints = [models.UniqueConstraint(fields=["rfc", "site"], name="one_impact_per_site")]

    def __str__(self) -> str:
        return f"{self.site.code}: {', '.join(self.lines + self.modules)}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        Impact.index_items([self])

    @staticmethod
    def index_items(impacts) -> None:
        """Write the items these (saved) impacts name as ImpactItem rows, replacing any they had. Call it
        wherever impacts are written without `save()` (bulk_create): the rows are what the RFC page's
        other open changes on the same items are found by."""
        impacts = [i for i in impacts if i.pk is not None]
        if not impacts:
            return
        ImpactItem.objects.filter(impact__in=impacts).delete()
        ImpactItem.objects.bulk_create(
            ImpactItem(impact_id=i.pk, rfc_id=i.rfc_id, site_id=i.site_id, kind=kind, key=key)
            for i in impacts
            for kind, key in sorted(item_keys(i.lines, i.modules, i.interfaces))
            if len(key) <= INDEXED_NAME_MAX
        )

    def snapshot(self) -> dict:
        content = {"site": self.site.code, "lines": self.lines, "modules": self.modules, "notes": self.notes}
        if self.interfaces:  # impacts filed before interfaces were named keep their signed content
            content["interfaces"] = self.interfaces
        return content


# Longer names cannot be entered (releases.services.ITEM_NAME_MAX); one stored before that limit, and too
# long for an index entry, is left out of the index rather than failing the write.
INDEXED_NAME_MAX = 1000


def item_keys(lines, modules, interfaces) -> set[tuple[str, str]]:
    """The items an impact names, as compared: (kind, name in lower case as Python lower-cases it)."""
    return (
        {("line", str(n).lower()) for n in lines or ()}
        | {("module", str(n).lower()) for n in modules or ()}
        | {("interface", str(n).lower()) for n in interfaces or ()}
    )


class ImpactItem(models.Model):
    """One item an impact names (a production line, a module, an interface), lower-cased: kept with the
    impact (`Impact.index_items`) so that the other open changes naming an item at a site are found
    through an index, not by reading every impact's lists."""

    impact = models.ForeignKey(Impact, on_delete=models.CASCADE, related_name="+")
    rfc = models.ForeignKey(Rfc, on_delete=models.CASCADE, related_name="+")
    # Indexed as the lookup index's first column.
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=10)  # "line", "module" or "interface"
    key = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["impact", "kind", "key"], name="one_item_per_impact")]
        indexes = [models.Index(fields=["site", "kind", "key", "rfc"], name="impact_item_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class EvidenceKind(models.TextChoices):
    SCREENSHOT = "screenshot", gettext_lazy("Screenshot")
    LOG = "log", gettext_lazy("Log")
    TEST_REPORT = "test_report", gettext_lazy("Test report")
    SIGNOFF = "signoff", gettext_lazy("Sign-off document")


class Evidence(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=12, choices=EvidenceKind.choices)
    description = models.CharField(max_length=300, blank=True)
    original_name = models.CharField(max_length=150)
    stored_name = models.CharField(max_length=64, unique=True, editable=False)
    content_type = models.CharField(max_length=60)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    superseded_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )

    class Meta:
        ordering = ["uploaded_at", "id"]
        verbose_name_plural = gettext_lazy("evidence")

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_kind_display()})"

    @property
    def is_image(self) -> bool:
        return self.content_type in ("image/png", "image/jpeg")

    @property
    def audit_object_id(self) -> str:
        return str(self.uuid)


class UatSignoff(models.Model):
    """A key user of the site proved the change in UAT (R6, R9)."""

    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="signoffs")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="+")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    comment = models.TextField()
    evidence = models.ManyToManyField(Evidence, related_name="signoffs")
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["signed_at"]

    def __str__(self) -> str:
        return f"UAT sign-off {self.site.code} by {self.signed_by}"


class GateWaiver(models.Model):
    """A release manager's signed decision to let one RFC pass one failing gate (C5).

    Bound to the artifact's SHA-256: a new artifact voids it. Revoked, it stays on record. Only the
    gates registered as waivable may be waived (`releases.gates.waivable`); `workflow.waivers` records
    and revokes waivers, with the password and the audit event.
    """

    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="waivers")
    gate = models.CharField(max_length=100)
    artifact_sha256 = models.CharField(max_length=64)
    reason = models.TextField(help_text=gettext_lazy("Why the RFC may go ahead although the gate fails."))
    failing_reason = models.TextField(help_text=gettext_lazy("What the gate said when it was waived."))
    waived_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    waived_at = models.DateTimeField()
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["waived_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rfc", "gate", "artifact_sha256"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_live_waiver_per_gate_and_artifact",
            )
        ]

    def __str__(self) -> str:
        return f"{self.gate} waived for {self.rfc_id}"

    @property
    def waived_by_name(self) -> str:
        return self.waived_by.get_full_name() or self.waived_by.get_username()


class RiskAcceptance(models.Model):
    """A business owner's signed acceptance that UAT does not have some high-criticality dependencies
    the RFC touches as they are in PROD (issue 19): the "Staging gaps accepted" gate then passes for
    exactly these gaps and this artifact. A new artifact, or a gap that changes (the register says
    "absent" where it said "simulator"), needs a new acceptance. Recorded by `workflow.fidelity`."""

    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="risk_acceptances")
    artifact_sha256 = models.CharField(max_length=64)
    # [{"site": "BER", "tier": "UAT", "dependency": "WMS", "kind": "simulator"}, …] as accepted.
    gaps = models.JSONField(default=list)
    reason = models.TextField(help_text=gettext_lazy("Why the business accepts the risk."))
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["accepted_at", "id"]

    def __str__(self) -> str:
        return f"Staging gaps of {self.rfc_id} accepted by {self.accepted_by_name}"

    @property
    def accepted_by_name(self) -> str:
        return self.accepted_by.get_full_name() or self.accepted_by.get_username()


class RolloutPlan(models.Model):
    """A release's rollout across sites in ordered rings (E10), saved by a release manager. Without
    one, the rings come from the sites' risk tiers (`Site.rollout_ring`)."""

    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="rollout_plan")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Rollout of {self.release}"


class Ring(models.Model):
    """One ring of a rollout plan: its sites, and how long they soak in PROD before the next ring."""

    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="rings")
    position = models.PositiveSmallIntegerField()
    soak_minutes = models.PositiveIntegerField(
        help_text=gettext_lazy(
            "How long every site of this ring runs the release in PROD before the next ring may start."
        )
    )
    sites = models.ManyToManyField(Site, related_name="+")

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["plan", "position"], name="one_ring_per_position")]

    def __str__(self) -> str:
        return f"Ring {self.position} of {self.plan.release}"


class GateRefusal(models.Model):
    """A gate that said no when someone (or the worker) tried to move an RFC on: submission, booking
    a slot, or the start of a PROD deployment. One row per failing gate; the dashboard counts them
    ("gate failure reasons by frequency") and links each count to the RFCs behind it."""

    rfc = models.ForeignKey(Rfc, on_delete=models.CASCADE, related_name="gate_refusals")
    stage = models.CharField(max_length=10, help_text=gettext_lazy("submit, schedule or deploy"))
    gate = models.CharField(max_length=100)
    reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["occurred_at", "gate"], name="gate_refusal_time_idx")]

    def __str__(self) -> str:
        return f"{self.gate} refused {self.rfc_id} at {self.stage}"
