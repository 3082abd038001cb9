from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from audit.filters import AuditEventFilterSet
from audit.models import AuditEvent
from audit.services import HASHED_FIELDS, verify
from environments import access


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [*HASHED_FIELDS, "hash"]  # every column the chain hashes, and the hash


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first (Admin and Auditor roles)."""

    serializer_class = AuditEventSerializer
    lookup_field = "seq"
    # The trail page filters with the same FilterSet (DESIGN.md: one FilterSet per list).
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilterSet

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not access.can(request.user, "read_audit"):
            raise PermissionDenied("Only admins and auditors read the audit trail.")

    def get_queryset(self):
        return AuditEvent.objects.order_by("-seq")

    @extend_schema(
        responses=inline_serializer(
            "AuditVerification",
            {
                "ok": serializers.BooleanField(),
                "count": serializers.IntegerField(),
                "head": serializers.CharField(),
                "first_bad": serializers.IntegerField(allow_null=True),
            },
        )
    )
    @action(detail=False, methods=["get"])
    def verify(self, request):
        return Response(verify().as_dict())
