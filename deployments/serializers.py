"""Serializers for deployments, their steps, scheduling requests and computed checks."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import serializers

from core.inputs import check_moment
from deployments.models import CheckKind, CheckRun, Deployment, DeploymentStep


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
    acknowledge_conflicts = serializers.BooleanField(
        default=False,
        help_text="Book beside other changes touching the same lines, modules or interfaces in an overlapping "
        "slot (a 422 with rule `Conflicting changes` lists them); the acknowledgement is audited.",
    )

    def validate_start(self, value):
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise serializers.ValidationError(_("Not an ISO 8601 time.")) from None
        if parsed.tzinfo is None:
            raise serializers.ValidationError(
                _("Give the start with its offset: a time without one is ambiguous.")
            )
        return check_moment(parsed)


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
