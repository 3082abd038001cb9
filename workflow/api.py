"""The releases and RFCs API. Every rule is in releases.services / releases.gates; the
views only parse input, call the service and shape the answer. Refusals raised by the services
are mapped to statuses by changecontrol.api.exception_handler (400/403/404/409/413/422)."""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from deployments import scheduling
from deployments.models import Deployment
from environments import access
from environments.models import Environment
from releases import gates, services
from releases.models import Evidence, Impact, Release, Rfc
from workflow import services as wf
from workflow.filters import DeploymentFilterSet, RfcFilterSet
from workflow.serializers import (
    CheckRequestSerializer,
    CheckRunSerializer,
    DeploymentCreateSerializer,
    DeploymentDetailSerializer,
    DeploymentSerializer,
    DeploymentStepSerializer,
    EvidenceSerializer,
    EvidenceUploadSerializer,
    GateSerializer,
    ReasonSerializer,
    ReleaseCreateSerializer,
    ReleaseFilterSerializer,
    ReleaseSerializer,
    RfcDetailSerializer,
    RfcListSerializer,
    RfcWriteSerializer,
    ScheduleRequestSerializer,
    SignoffCreateSerializer,
    SignoffSerializer,
    TransitionRequestSerializer,
)

NUMBER = re.compile(r"^RFC-\d{4}-\d{4,}$")
GATE_STAGES = ("submit", "schedule", "deploy")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class RuleErrorSerializer(ErrorSerializer):
    rule = serializers.CharField(help_text="The first failing gate or rule.")
    failed = GateSerializer(many=True, required=False)


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names the fields."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed for the caller."),
    404: OpenApiResponse(ErrorSerializer, description="Unknown, or of a site the caller does not see."),
    409: OpenApiResponse(ErrorSerializer, description="The RFC is not in a state that allows this."),
}


class ApiPagination(PageNumberPagination):
    """Bounded pages: a page costs the same queries whatever the table holds."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


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
        _check_uuid(self.kwargs[self.lookup_field])
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


def _check_uuid(value: str) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


# --- RFCs -------------------------------------------------------------------------------------
_ID = OpenApiParameter(
    "uuid", str, OpenApiParameter.PATH, description="The RFC's UUID, or its number (RFC-2026-0042)."
)
_DETAIL = {
    name: extend_schema(parameters=[_ID])
    for name in (
        "retrieve",
        "update",
        "partial_update",
        "evidence",
        "submit",
        "gates",
        "signoff",
        "transition",
    )
}


@extend_schema_view(**_DETAIL)
class RfcViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Requests for change of the sites the caller sees; another site's RFC is a 404."""

    lookup_field = "uuid"
    pagination_class = ApiPagination
    parser_classes = [JSONParser]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    # The list page filters with the same FilterSet (DESIGN.md: one FilterSet per list).
    filter_backends = [DjangoFilterBackend]
    filterset_class = RfcFilterSet

    def get_serializer_class(self):
        return RfcListSerializer if self.action == "list" else RfcDetailSerializer

    def get_queryset(self):
        user = self.request.user
        if self.action != "list":
            return services.rfc_detail_queryset(user).prefetch_related("signoffs__release")
        return (
            services.visible_rfcs(user)
            .select_related("release", "author")
            .prefetch_related(Prefetch("impacts", queryset=Impact.objects.select_related("site")))
        )

    def get_object(self) -> Rfc:
        value = str(self.kwargs[self.lookup_field])
        if NUMBER.match(value):
            lookup = {"number": value}
        else:
            _check_uuid(value)
            lookup = {"uuid": value}
        rfc = self.get_queryset().filter(**lookup).first()
        if rfc is None:
            raise Http404
        self.check_object_permissions(self.request, rfc)
        return rfc

    def _detail(self, rfc: Rfc, code: int = status.HTTP_200_OK) -> Response:
        fresh = (
            services.rfc_detail_queryset(self.request.user)
            .prefetch_related("signoffs__release")
            .get(pk=rfc.pk)
        )
        return Response(RfcDetailSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(summary="RFCs")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="File an RFC (a draft)",
        request=RfcWriteSerializer,
        responses={201: RfcDetailSerializer, 400: ERRORS[400], 403: ERRORS[403]},
    )
    def create(self, request, *args, **kwargs):
        form = RfcWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        rfc = services.create_rfc(request.user, **form.validated_data)
        return self._detail(rfc, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace a draft's content",
        request=RfcWriteSerializer,
        responses={200: RfcDetailSerializer, **ERRORS},
    )
    def update(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    @extend_schema(
        summary="Edit a draft", request=RfcWriteSerializer, responses={200: RfcDetailSerializer, **ERRORS}
    )
    def partial_update(self, request, *args, **kwargs):
        return self._update(request, partial=True)

    def _update(self, request, partial: bool) -> Response:
        rfc = self.get_object()
        form = RfcWriteSerializer(data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        fields = dict(form.validated_data)
        impacts = fields.pop("impacts", None)
        rfc = wf.update_rfc(request.user, rfc, impacts=impacts, **fields)
        return self._detail(rfc)

    # --- Evidence ---
    @extend_schema(
        summary="The RFC's evidence", responses={200: EvidenceSerializer(many=True), 404: ERRORS[404]}
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="evidence",
        pagination_class=None,
        parser_classes=[MultiPartParser, FormParser],
    )
    def evidence(self, request, *args, **kwargs):
        rfc = self.get_object()
        return Response(EvidenceSerializer(rfc.evidence.all(), many=True).data)

    @extend_schema(
        summary="Upload evidence (multipart)",
        request=EvidenceUploadSerializer,
        parameters=[_ID],
        responses={
            201: EvidenceSerializer,
            **ERRORS,
            413: OpenApiResponse(ErrorSerializer, description="The file is too large."),
        },
    )
    @evidence.mapping.post
    def add_evidence(self, request, *args, **kwargs):
        rfc = self.get_object()
        form = EvidenceUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        supersedes = None
        if data["supersedes"] is not None:
            supersedes = Evidence.objects.filter(rfc=rfc, uuid=data["supersedes"]).first()
            if supersedes is None:
                raise ValidationError({"supersedes": "No such evidence on this RFC."})
        evidence = wf.add_evidence(
            request.user, rfc, data["file"], data["kind"], data["description"], supersedes=supersedes
        )
        return Response(EvidenceSerializer(evidence).data, status=status.HTTP_201_CREATED)

    # --- Sign-off, gates, transitions ---
    @extend_schema(
        summary="Sign off UAT for a site (key user, multipart)",
        request=SignoffCreateSerializer,
        responses={
            201: SignoffSerializer,
            **ERRORS,
            413: OpenApiResponse(ErrorSerializer, description="A file is too large."),
        },
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def signoff(self, request, *args, **kwargs):
        rfc = self.get_object()
        data = {key: request.data[key] for key in ("site", "comment") if key in request.data}
        files = request.FILES.getlist("files") or request.FILES.getlist("files[]")
        if files:
            data["files"] = files
        form = SignoffCreateSerializer(data=data)
        form.is_valid(raise_exception=True)
        site = access.visible_sites(request.user).filter(code=form.validated_data["site"]).first()
        if site is None:
            raise ValidationError({"site": f"Unknown site {form.validated_data['site']!r}."})
        signoff = services.sign_off_uat(
            request.user, rfc, site, form.validated_data["comment"], form.validated_data["files"]
        )
        return Response(SignoffSerializer(signoff).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Readiness gates",
        parameters=[
            OpenApiParameter(
                "stage", str, enum=[*GATE_STAGES], description="Gates of this stage (default submit)."
            )
        ],
        responses={200: GateSerializer(many=True), 400: ERRORS[400], 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def gates(self, request, *args, **kwargs):
        rfc = self.get_object()
        stage = request.query_params.get("stage", "submit")
        if stage not in GATE_STAGES:
            raise ValidationError({"stage": f"Stage must be one of {', '.join(GATE_STAGES)}."})
        return Response([gate.as_dict() for gate in gates.evaluate(rfc, stage)])

    @extend_schema(
        summary="Submit a draft for approval",
        request=None,
        responses={
            200: RfcDetailSerializer,
            403: ERRORS[403],
            404: ERRORS[404],
            409: ERRORS[409],
            422: OpenApiResponse(
                RuleErrorSerializer, description="A gate fails; `rule` and `failed` name it."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, *args, **kwargs):
        rfc = self.get_object()
        return self._detail(wf.submit(request.user, rfc))

    @extend_schema(
        summary="Book the PROD start at one site (release manager; the plant calendar decides)",
        request=ScheduleRequestSerializer,
        responses={
            201: DeploymentSerializer,
            **ERRORS,
            422: OpenApiResponse(
                RuleErrorSerializer, description="The calendar refuses; `failed` lists every reason."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def schedule(self, request, *args, **kwargs):
        rfc = self.get_object()
        form = ScheduleRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        site = access.visible_sites(request.user).filter(code=data["site"]).first()
        if site is None:
            raise ValidationError({"site": f"Unknown site {data['site']!r}."})
        deployment = wf.schedule(
            request.user,
            rfc,
            site,
            data["start"],
            data.get("duration") or scheduling.default_duration(rfc),
            handover_override=data["handover_override"],
        )
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Computed evidence: idempotency checks and rollback rehearsals",
        request=CheckRequestSerializer,
        responses={200: CheckRunSerializer(many=True), 202: CheckRunSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def checks(self, request, *args, **kwargs):
        from deployments import checks as computed
        from deployments.models import CheckRun

        rfc = self.get_object()
        if request.method == "GET":
            runs = CheckRun.objects.filter(rfc=rfc).select_related(
                "environment", "environment__site", "release"
            )
            return Response(CheckRunSerializer(runs[:100], many=True).data)
        form = CheckRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        site = access.visible_sites(request.user).filter(code=form.validated_data["site"]).first()
        if site is None:
            raise ValidationError({"site": f"Unknown site {form.validated_data['site']!r}."})
        run = computed.request_check(request.user, rfc, form.validated_data["kind"], site)
        return Response(CheckRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Take a transition (withdraw, cancel, close, unschedule…)",
        request=TransitionRequestSerializer,
        responses={
            200: RfcDetailSerializer,
            **ERRORS,
            422: OpenApiResponse(RuleErrorSerializer, description="A gate fails."),
        },
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, *args, **kwargs):
        rfc = self.get_object()
        form = TransitionRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        rfc = wf.transition(request.user, rfc, form.validated_data["name"], form.validated_data["reason"])
        return self._detail(rfc)


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
