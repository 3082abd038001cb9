"""The releases API: list, read and create releases (product, semantic version, artifact + SHA-256)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.api import ERRORS, ApiPagination, ErrorSerializer, check_uuid
from environments import access
from releases import services
from releases.models import Release, RiskQuestion
from releases.serializers import (
    ReleaseCreateSerializer,
    ReleaseFilterSerializer,
    ReleaseSerializer,
    RiskQuestionSerializer,
)


# --- Releases -----------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Releases", parameters=[ReleaseFilterSerializer]),
    retrieve=extend_schema(summary="One release"),
)
class ReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Releases (product, semantic version, artifact with its SHA-256, SQL migration and undo)."""

    serializer_class = ReleaseSerializer
    lookup_field = "uuid"
    pagination_class = ApiPagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        # Releases belong to no site; a user who sees no site at all sees none.
        if not access.visible_sites(self.request.user).exists():
            return Release.objects.none()
        queryset = Release.objects.select_related("created_by")
        if self.action == "list":
            filters = ReleaseFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if filters.validated_data.get("product"):
                queryset = queryset.filter(product=filters.validated_data["product"])
        return queryset

    def get_object(self):
        check_uuid(self.kwargs[self.lookup_field])
        return super().get_object()

    @extend_schema(
        summary="Create a release",
        request=ReleaseCreateSerializer,
        responses={
            201: ReleaseSerializer,
            400: ERRORS[400],
            403: ERRORS[403],
            413: OpenApiResponse(ErrorSerializer, description="The artifact is too large."),
        },
    )
    def create(self, request, *args, **kwargs):
        form = ReleaseCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        release = services.create_release(request.user, **form.validated_data)
        return Response(
            ReleaseSerializer(release, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )


# --- Risk questions -------------------------------------------------------------------------------
@extend_schema_view(list=extend_schema(summary="The risk questions an RFC answers (`risk_answers`)"))
class RiskQuestionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The active risk questions, in order: answer each asked one (`computed` empty) from 0 (none) to 3
    (high); `high_at` is the answer from which the change is high risk whatever the score (0: never)."""

    serializer_class = RiskQuestionSerializer
    pagination_class = None

    def get_queryset(self):
        return RiskQuestion.objects.filter(active=True).order_by("position", "key")
