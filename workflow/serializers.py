"""API shapes for releases and RFCs. Input serializers check types only; every rule lives in
releases.services and is applied there (the pages call the same functions)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.models import CheckKind, CheckRun, Deployment, DeploymentStep
from releases.models import Evidence, EvidenceKind, Impact, Release, Rfc, UatSignoff
from workflow.transitions import TRANSITIONS


# --- Releases ---------------------------------------------------------------------------------
class ReleaseSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Release
        fields = [
            "uuid",
            "product",
            "version",
            "notes",
            "artifact_name",
            "artifact_size",
            "artifact_url",
            "artifact_sha256",
            "migration_sql",
            "undo_sql",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class ReleaseCreateSerializer(serializers.Serializer):
    """Multipart with an `artifact` file (hashed on upload), or JSON with `artifact_url` plus
    `artifact_sha256`."""

    product = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=64, help_text="Semantic version, e.g. 2.4.1.")
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    artifact = serializers.FileField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The artifact itself; its SHA-256 is recorded at upload.",
    )
    artifact_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=200)
    artifact_sha256 = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="SHA-256 of the artifact at artifact_url (64 hex digits).",
    )
    migration_sql = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    undo_sql = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class ReleaseFilterSerializer(serializers.Serializer):
    product = serializers.CharField(required=False, max_length=100, help_text="Only this product or module.")


class ReleaseRefSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__", read_only=True, help_text='"product version"')

    class Meta:
        model = Release
        fields = ["uuid", "product", "version", "name"]
        read_only_fields = fields


# --- Evidence and sign-offs -------------------------------------------------------------------
class EvidenceSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    superseded_by = serializers.SlugRelatedField(slug_field="uuid", read_only=True)

    class Meta:
        model = Evidence
        fields = [
            "uuid",
            "kind",
            "description",
            "original_name",
            "content_type",
            "size",
            "sha256",
            "uploaded_by",
            "uploaded_at",
            "superseded_by",
        ]
        read_only_fields = fields


class EvidenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=EvidenceKind.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
    supersedes = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="UUID of the evidence of this RFC that the file replaces.",
    )


class SignoffSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    signed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    release = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    evidence = serializers.SlugRelatedField(slug_field="uuid", many=True, read_only=True)

    class Meta:
        model = UatSignoff
        fields = [
            "id",
            "site",
            "release",
            "signed_by",
            "signed_at",
            "comment",
            "evidence",
            "voided_at",
            "void_reason",
        ]
        read_only_fields = fields


class SignoffCreateSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=20, help_text="Code of the site whose UAT is signed off.")
    comment = serializers.CharField(help_text="What was tested and what was seen.")
    files = serializers.ListField(
        child=serializers.FileField(),
        min_length=1,
        help_text="One or more evidence files (repeat the field).",
    )


# --- RFCs -------------------------------------------------------------------------------------
class ImpactSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Impact
        fields = ["site", "lines", "modules", "notes"]
        read_only_fields = fields


class ImpactInputSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=20, help_text="Site code.")
    lines = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    modules = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


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
    title = serializers.CharField(max_length=200)
    description = serializers.CharField()
    release = serializers.UUIDField(help_text="UUID of the release.")
    impacts = ImpactInputSerializer(
        many=True, allow_empty=True, help_text="Target sites with the affected lines and modules (R1)."
    )
    rollback_plan = serializers.CharField(
        help_text="The exact undo script or steps (R3).", trim_whitespace=False
    )
    estimated_downtime_minutes = serializers.IntegerField(
        min_value=0, max_value=2_147_483_647, required=False
    )
    retraining_note = serializers.CharField(required=False, allow_blank=True)
    high_risk = serializers.BooleanField(required=False)
    requested_timing = serializers.CharField(required=False, allow_blank=True, max_length=200)
    emergency = serializers.BooleanField(required=False, help_text="Emergency change (W6).")
    emergency_reason = serializers.CharField(required=False, allow_blank=True)

    def validate_release(self, value):
        release = Release.objects.filter(uuid=value).first()
        if release is None:
            raise serializers.ValidationError("Unknown release.")
        return release


TRANSITION_NAMES = sorted(
    name for name in TRANSITIONS if name != "schedule"
)  # scheduling: rfcs/{id}/schedule/


class TransitionRequestSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=TRANSITION_NAMES)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class GateSerializer(serializers.Serializer):
    name = serializers.CharField()
    passed = serializers.BooleanField()
    reason = serializers.CharField()


class DeploymentSerializer(serializers.ModelSerializer):
    rfc = serializers.CharField(source="rfc.number", read_only=True)
    environment = serializers.IntegerField(source="environment_id", read_only=True)
    site = serializers.CharField(source="environment.site.code", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "uuid",
            "rfc",
            "site",
            "environment",
            "scheduled_start",
            "scheduled_end",
            "duration_minutes",
            "state",
            "emergency",
            "handover_override",
        ]
        read_only_fields = fields


class ScheduleRequestSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=20)
    start = serializers.CharField(
        max_length=40, help_text="ISO 8601 with offset, e.g. 2026-12-01T09:00:00+01:00."
    )
    duration = serializers.IntegerField(
        min_value=1,
        max_value=12 * 60,
        required=False,
        help_text="Minutes; default: the RFC's downtime, at least 30.",
    )
    handover_override = serializers.BooleanField(
        default=False, help_text="Plant Director, emergency changes only."
    )

    def validate_start(self, value):
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise serializers.ValidationError("Not an ISO 8601 time.") from None
        if parsed.tzinfo is None:
            raise serializers.ValidationError(
                "Give the start with its offset: a time without one is ambiguous."
            )
        return parsed


class DeploymentStepSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = DeploymentStep
        fields = [
            "order",
            "phase",
            "name",
            "adapter",
            "state",
            "started_at",
            "finished_at",
            "duration_seconds",
            "output",
            "result",
        ]
        read_only_fields = fields


class DeploymentDetailSerializer(DeploymentSerializer):
    tier = serializers.CharField(source="environment.tier", read_only=True)

    class Meta(DeploymentSerializer.Meta):
        fields = [
            *DeploymentSerializer.Meta.fields,
            "tier",
            "started_at",
            "finished_at",
            "next_action_at",
            "attempts",
            "outcome",
        ]
        read_only_fields = fields


class DeploymentCreateSerializer(serializers.Serializer):
    rfc = serializers.UUIDField(help_text="UUID of the RFC whose release is deployed.")
    environment = serializers.IntegerField(help_text="A DEV or UAT environment (PROD: rfcs/{id}/schedule/).")
    duration = serializers.IntegerField(min_value=1, max_value=12 * 60, default=30)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class CheckRunSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.__str__", read_only=True)
    release = serializers.CharField(source="release.__str__", read_only=True)

    class Meta:
        model = CheckRun
        fields = [
            "id",
            "kind",
            "environment",
            "release",
            "artifact_sha256",
            "state",
            "created_at",
            "finished_at",
            "summary",
            "result",
        ]
        read_only_fields = fields


class CheckRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CheckKind.choices)
    site = serializers.CharField(max_length=20)
