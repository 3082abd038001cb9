"""The deployments API: list and read deployments, start DEV/UAT ones, roll back and cancel."""

from __future__ import annotations

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core.api import ERRORS, ApiPagination, RuleErrorSerializer
from deployments import scheduling
from deployments.filters import DeploymentFilterSet
from deployments.models import Deployment
from deployments.serializers import (
    DeploymentCreateSerializer,
    DeploymentDetailSerializer,
    DeploymentStepSerializer,
    ReasonSerializer,
)
from environments import access
from environments.models import Environment
from releases import services


# --- Deployments -----------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Deployments of the RFCs the caller sees"),
    retrieve=extend_schema(summary="One deployment with its outcome"),
)
class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployments: PROD ones are booked with rfcs/{id}/schedule/, DEV and UAT ones start now (POST)."""

    lookup_field = "uuid"
    pagination_class = ApiPagination
    parser_classes = [JSONParser]
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeploymentFilterSet

    def get_serializer_class(self):
        return DeploymentDetailSerializer

    def get_queryset(self):
        return (
            Deployment.objects.filter(rfc__in=services.visible_rfcs(self.request.user))
            .select_related("rfc", "environment", "environment__site")
            .order_by("-scheduled_start", "-id")
        )

    @extend_schema(
        summary="Deploy an RFC's release to DEV or UAT now",
        request=DeploymentCreateSerializer,
        responses={
            201: DeploymentDetailSerializer,
            **ERRORS,
            422: OpenApiResponse(RuleErrorSerializer, description="The environment's calendar."),
        },
    )
    def create(self, request, *args, **kwargs):
        form = DeploymentCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        rfc = services.visible_rfcs(request.user).filter(uuid=data["rfc"]).first()
        environment = (
            Environment.objects.filter(pk=data["environment"], site__in=access.visible_sites(request.user))
            .select_related("site")
            .first()
        )
        if rfc is None or environment is None:
            raise Http404
        deployment = scheduling.deploy_now(request.user, rfc, environment, data["duration"])
        return Response(DeploymentDetailSerializer(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The step journal", responses={200: DeploymentStepSerializer(many=True), 404: ERRORS[404]}
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def steps(self, request, *args, **kwargs):
        deployment = self.get_object()
        return Response(
            DeploymentStepSerializer(deployment.steps.order_by("order", "started_at"), many=True).data
        )

    @extend_schema(
        summary="Roll a running deployment back (release manager)",
        request=ReasonSerializer,
        responses={200: DeploymentDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, *args, **kwargs):
        form = ReasonSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        deployment = scheduling.request_rollback(
            request.user, self.get_object(), form.validated_data["reason"]
        )
        return Response(DeploymentDetailSerializer(deployment).data)

    @extend_schema(
        summary="Cancel a deployment before it starts",
        request=ReasonSerializer,
        responses={200: DeploymentDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        form = ReasonSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        deployment = scheduling.cancel_deployment(
            request.user, self.get_object(), form.validated_data["reason"]
        )
        return Response(DeploymentDetailSerializer(deployment).data)
