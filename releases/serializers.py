"""Serializers for releases and an RFC's content: evidence, UAT sign-offs, impacts."""

from __future__ import annotations

from rest_framework import serializers

from core.api import UrlOrNullField
from releases.models import Evidence, EvidenceKind, Impact, Release, RiskQuestion, UatSignoff


# --- Releases ---------------------------------------------------------------------------------
class FlagSerializer(serializers.Serializer):
    """A feature flag the release declares; each site turns it on later as a standard change."""

    key = serializers.RegexField(r"^[a-z][a-z0-9_]{1,62}$", help_text="The key the plant's software reads.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    safe = serializers.BooleanField(
        required=False, default=False, help_text="May be switched outside a deployment window."
    )


class ReleaseSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    flags = FlagSerializer(many=True, read_only=True)
    artifact_url = UrlOrNullField(
        read_only=True, help_text="Where the artifact is fetched from; null when uploaded."
    )

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
            "flags",
            "config",
            "config_sha256",
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
    artifact_url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Where the artifact is fetched from (with artifact_sha256), instead of an upload.",
    )
    artifact_sha256 = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="SHA-256 of the artifact at artifact_url (64 hex digits).",
    )
    migration_sql = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    undo_sql = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    flags = FlagSerializer(many=True, required=False, default=list)
    config = serializers.JSONField(
        required=False,
        default=dict,
        help_text="Configuration bundles, {bundle: {key: value}} (flat; text, numbers or true/false). Without "
        "an artifact the release changes configuration only, and their SHA-256 is its artifact's.",
    )


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
    superseded_by = serializers.SlugRelatedField(slug_field="uuid", read_only=True, allow_null=True)

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
        fields = ["site", "lines", "modules", "interfaces", "notes"]
        read_only_fields = fields


class ImpactInputSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=20, help_text="Site code.")
    lines = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    modules = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    interfaces = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        help_text="Interfaces to other systems it touches (ERP, WMS, scales …).",
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class RiskQuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RiskQuestion
        fields = ["key", "text", "help_text", "weight", "computed", "high_at"]
        read_only_fields = fields
