"""API shapes for releases and RFCs. Input serializers check types only; every rule lives in
releases.services and is applied there (the pages call the same functions)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import mfa
from core.inputs import no_line_breaks
from releases.models import Release, Rfc
from releases.serializers import (
    EvidenceSerializer,
    ImpactInputSerializer,
    ImpactSerializer,
    ReleaseRefSerializer,
    SignoffSerializer,
)
from releases.services import site_codes
from workflow.transitions import TRANSITIONS


class TransitionOptionSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    needs_reason = serializers.BooleanField()


class RfcListSerializer(serializers.ModelSerializer):
    release = ReleaseRefSerializer(read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    sites = serializers.SerializerMethodField()

    class Meta:
        model = Rfc
        fields = [
            "uuid",
            "number",
            "title",
            "state",
            "change_class",
            "release",
            "sites",
            "author",
            "high_risk",
            "risk_level",
            "risk_score",
            "emergency",
            "estimated_downtime_minutes",
            "requested_timing",
            "created_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields

    def get_sites(self, obj) -> list[str]:
        return [impact.site.code for impact in obj.impacts.all()]


# The fields RfcListSerializer reads, for `.only()`: a page of 50 without the long texts and JSON.
RFC_LIST_COLUMNS = (
    *(name for name in RfcListSerializer.Meta.fields if name not in ("release", "sites", "author")),
    "release__uuid",
    "release__product",
    "release__version",
    "author__username",
)
_WHEN = serializers.DateTimeField(read_only=True)


def rfc_list_rows(rfcs) -> list[dict]:
    """`RfcListSerializer(rfcs, many=True).data`, written out: the same keys in the same order and
    the same values (DRF's own field formats dates), without DRF building and walking 17 fields per
    row, which cost a 50-row page more than its queries. RfcListSerializer stays the documented
    shape; tests/workflow/test_rfc_list_rows.py holds the two equal."""
    when = _WHEN.to_representation
    rfcs = list(rfcs)
    sites = site_codes(rfcs)
    rows = []
    for rfc in rfcs:
        release = rfc.release
        rows.append(
            {
                "uuid": str(rfc.uuid),
                "number": rfc.number,
                "title": rfc.title,
                "state": rfc.state,
                "change_class": rfc.change_class,
                "release": {
                    "uuid": str(release.uuid),
                    "product": release.product,
                    "version": release.version,
                    "name": str(release),
                },
                "sites": sites[rfc.pk],
                "author": rfc.author.username,
                "high_risk": rfc.high_risk,
                "risk_level": rfc.risk_level,
                "risk_score": rfc.risk_score,
                "emergency": rfc.emergency,
                "estimated_downtime_minutes": rfc.estimated_downtime_minutes,
                "requested_timing": rfc.requested_timing,
                "created_at": when(rfc.created_at),
                "updated_at": when(rfc.updated_at),
                "submitted_at": when(rfc.submitted_at),
            }
        )
    return rows


class RfcDetailSerializer(RfcListSerializer):
    impacts = ImpactSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)
    signoffs = SignoffSerializer(many=True, read_only=True)
    actions = serializers.SerializerMethodField(help_text="The transitions the caller may take now.")

    class Meta(RfcListSerializer.Meta):
        fields = [
            *RfcListSerializer.Meta.fields,
            "description",
            "retraining_note",
            "rollback_plan",
            "emergency_reason",
            "risk_answers",
            "dependencies",
            "impacts",
            "evidence",
            "signoffs",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(TransitionOptionSerializer(many=True))
    def get_actions(self, obj):
        from workflow.services import available_transitions

        request = self.context.get("request")
        if request is None:
            return []
        return [
            {"name": spec.name, "label": spec.label, "needs_reason": spec.needs_reason}
            for spec in available_transitions(request.user, obj)
        ]


class RfcWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, validators=[no_line_breaks])
    description = serializers.CharField()
    release = serializers.UUIDField(help_text="UUID of the release.")
    impacts = ImpactInputSerializer(
        many=True, allow_empty=True, help_text="Target sites with the affected lines and modules."
    )
    rollback_plan = serializers.CharField(help_text="The exact undo script or steps.", trim_whitespace=False)
    estimated_downtime_minutes = serializers.IntegerField(
        min_value=0, max_value=2_147_483_647, required=False
    )
    retraining_note = serializers.CharField(required=False, allow_blank=True)
    high_risk = serializers.BooleanField(
        required=False, help_text="Treat as high risk whatever the assessment says."
    )
    risk_answers = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=3),
        required=False,
        help_text="The risk questions' answers by key, 0 (none) to 3 (high); GET /api/v1/risk-questions/ "
        "lists the questions. The RFC may be submitted only when every asked question is answered.",
    )
    requested_timing = serializers.CharField(required=False, allow_blank=True, max_length=200)
    emergency = serializers.BooleanField(required=False, help_text="Emergency change.")
    emergency_reason = serializers.CharField(required=False, allow_blank=True)
    dependencies = serializers.ListField(
        child=serializers.CharField(max_length=60),
        required=False,
        max_length=20,
        help_text="External systems the change touches, as named in the sites' dependency registers "
        '(e.g. ["ERP", "WMS"]): the "Staging gaps accepted" gate compares them with UAT and PROD.',
    )

    def validate_release(self, value):
        release = Release.objects.filter(uuid=value).first()
        if release is None:
            raise serializers.ValidationError(_("Unknown release."))
        return release


TRANSITION_NAMES = sorted(
    name for name in TRANSITIONS if name != "schedule"
)  # scheduling: rfcs/{id}/schedule/


class TransitionRequestSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=TRANSITION_NAMES)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    release = serializers.UUIDField(
        required=False,
        help_text="For `rework` (after a rollback or a failure): UUID of the fixed release to attach.",
    )
    standard_change = serializers.UUIDField(
        required=False,
        help_text="For `submit`: UUID of the active standard change that approves this routine RFC instead of "
        "the chain (every gate still applies).",
    )


OTP_CODE_HELP = (
    "The current code from the signer's authenticator app: required when the signer has set up "
    "two-step sign-in; each code signs once."
)


class SignerFieldsMixin:
    """A signed act: the signer's `password`, and `otp_code` when the signer has set up two-step
    sign-in. A signer who signs in only through single sign-on (no local password) gives `otp_code`
    alone."""

    def validate(self, attrs):
        user = self.context["request"].user
        if not attrs.get("password") and not mfa.signs_with_code_only(user):
            raise serializers.ValidationError({"password": [_("This field is required.")]})
        return attrs


class WaiverRequestSerializer(SignerFieldsMixin, serializers.Serializer):
    gate = serializers.CharField(max_length=100, help_text="The failing gate's name, e.g. 'SQL idempotent'.")
    reason = serializers.CharField(
        max_length=2000, help_text="Why the RFC may go ahead although the gate fails."
    )
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        required=False,
        default="",
        help_text="The caller's password, re-entered for this waiver.",
    )
    otp_code = serializers.CharField(
        write_only=True, required=False, allow_blank=True, default="", max_length=16, help_text=OTP_CODE_HELP
    )


class WaiverRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class WaiverSerializer(serializers.ModelSerializer):
    waived_by = serializers.CharField(source="waived_by.username", read_only=True)
    waived_by_name = serializers.CharField(read_only=True)
    revoked_by = serializers.CharField(
        source="revoked_by.username", read_only=True, default=None, allow_null=True
    )
    live = serializers.SerializerMethodField(
        help_text="Counts now: not revoked, and for the artifact the RFC carries now."
    )

    class Meta:
        from releases.models import GateWaiver

        model = GateWaiver
        fields = [
            "id",
            "gate",
            "reason",
            "failing_reason",
            "artifact_sha256",
            "waived_by",
            "waived_by_name",
            "waived_at",
            "revoked_by",
            "revoked_at",
            "revoke_reason",
            "live",
        ]

    def get_live(self, waiver) -> bool:
        return waiver.revoked_at is None and waiver.artifact_sha256 == waiver.rfc.release.artifact_sha256


class RolloutSiteSerializer(serializers.Serializer):
    site = serializers.CharField(source="site.code")
    state = serializers.ChoiceField(
        choices=["waiting", "scheduled", "running", "succeeded", "rolled_back", "failed"]
    )
    prod_version = serializers.CharField(
        source="version", help_text="What the site's PROD runs of the product."
    )
    rfc = serializers.CharField(source="rfc.number", allow_null=True, default=None)
    review = serializers.SerializerMethodField()

    def get_review(self, entry) -> str | None:
        """The close code of the review of the site's deployment ("due" while it is open)."""
        if entry.review is None:
            return None
        return entry.review.close_code if entry.review.done else "due"


class RolloutRingSerializer(serializers.Serializer):
    ring = serializers.IntegerField(source="position")
    soak_minutes = serializers.IntegerField()
    next_start = serializers.DateTimeField(
        allow_null=True, help_text="The earliest start allowed (null: at once for ring 0, or not yet known)."
    )
    blocked = serializers.CharField(help_text="Why the ring may not start (empty when it may).")
    sites = RolloutSiteSerializer(many=True)


class RolloutSerializer(serializers.Serializer):
    release = serializers.CharField()
    planned = serializers.BooleanField(
        help_text="A saved plan (else the rings follow the sites' risk tiers)."
    )
    halted = serializers.CharField(help_text="Why the rollout is halted (empty when it is not).")
    rings = RolloutRingSerializer(many=True)
