"""The releases and RFCs API. Every rule is in releases.services / releases.gates; the
views only parse input, call the service and shape the answer. Refusals raised by the services
are mapped to statuses by changecontrol.api.exception_handler (400/403/404/409/413/422)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.api import ERRORS, ApiPagination, ErrorSerializer, GateSerializer, RuleErrorSerializer, check_uuid
from deployments import scheduling
from deployments.serializers import (
    CheckRequestSerializer,
    CheckRunSerializer,
    DeploymentSerializer,
    ScheduleRequestSerializer,
)
from releases import gates, services
from releases.models import RFC_NUMBER, Evidence, Rfc
from releases.serializers import (
    EvidenceSerializer,
    EvidenceUploadSerializer,
    SignoffCreateSerializer,
    SignoffSerializer,
)
from workflow import services as wf
from workflow import waivers as waiving
from workflow.filters import RfcFilterSet
from workflow.rollout import status as rollout_status
from workflow.serializers import (
    RFC_LIST_COLUMNS,
    RfcDetailSerializer,
    RfcListSerializer,
    RfcWriteSerializer,
    RolloutSerializer,
    TransitionRequestSerializer,
    WaiverRequestSerializer,
    WaiverRevokeSerializer,
    WaiverSerializer,
    rfc_list_rows,
)

GATE_STAGES = ("submit", "schedule", "deploy")


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
        "waivers",
        "revoke_waiver",
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
        return services.visible_rfcs(user).select_related("release", "author").only(*RFC_LIST_COLUMNS)

    def get_object(self) -> Rfc:
        value = str(self.kwargs[self.lookup_field])
        if RFC_NUMBER.match(value):
            lookup = {"number": value}
        else:
            check_uuid(value)
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
        # RfcListSerializer's shape, written out (rfc_list_rows): the same JSON at a fraction of the cost.
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(rfc_list_rows(page))

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
                raise ValidationError({"supersedes": _("No such evidence on this RFC.")})
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
        site = services.target_site(request.user, rfc, form.validated_data["site"])
        signoff = wf.sign_off_uat(
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
            raise ValidationError(
                {"stage": _("Stage must be one of %(stages)s.") % {"stages": ", ".join(GATE_STAGES)}}
            )
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
        site = services.target_site(request.user, rfc, data["site"])
        deployment = wf.schedule(
            request.user,
            rfc,
            site,
            data["start"],
            data.get("duration") or scheduling.default_duration(rfc),
            handover_override=data["handover_override"],
            acknowledge_conflicts=data["acknowledge_conflicts"],
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
        site = services.target_site(request.user, rfc, form.validated_data["site"])
        run = computed.request_check(request.user, rfc, form.validated_data["kind"], site)
        return Response(CheckRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The rollout of the RFC's release across sites, ring by ring",
        description=(
            "Each ring's sites with their state, PROD version and review, the earliest start allowed and "
            "why a ring may not start yet; `halted` says why a rollback or failure stopped the rollout."
        ),
        responses={200: RolloutSerializer, 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def rollout(self, request, *args, **kwargs):
        rfc = self.get_object()
        return Response(RolloutSerializer(rollout_status(rfc.release)).data)

    @extend_schema(
        methods=["GET"],
        summary="Gate waivers of the RFC (live, revoked, or for an earlier artifact)",
        responses={200: WaiverSerializer(many=True), 404: ERRORS[404]},
    )
    @extend_schema(
        methods=["POST"],
        summary="Waive a failing gate for this RFC's artifact (release manager, with the password)",
        description=(
            "Only the computed evidence about the pipeline is waivable (UAT data fresh, SQL idempotent, "
            "Rollback rehearsed); the waiver is bound to the artifact's SHA-256 and audited. A wrong "
            "password is a 400 and records no waiver."
        ),
        request=WaiverRequestSerializer,
        responses={
            201: WaiverSerializer,
            **ERRORS,
            422: OpenApiResponse(
                RuleErrorSerializer, description="The gate may not be waived; `rule` names it."
            ),
        },
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def waivers(self, request, *args, **kwargs):
        rfc = self.get_object()
        if request.method == "GET":
            return Response(WaiverSerializer(waiving.waivers_of(rfc), many=True).data)
        form = WaiverRequestSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        waiver = waiving.waive(
            request.user, rfc, data["gate"], data["reason"], data["password"], otp_code=data["otp_code"]
        )
        return Response(WaiverSerializer(waiver).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke a gate waiver (release manager)",
        request=WaiverRevokeSerializer,
        parameters=[OpenApiParameter("waiver_id", int, OpenApiParameter.PATH)],
        responses={200: WaiverSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path=r"waivers/(?P<waiver_id>[0-9]+)/revoke")
    def revoke_waiver(self, request, *args, waiver_id=None, **kwargs):
        rfc = self.get_object()
        waiver = waiving.waivers_of(rfc).filter(pk=waiver_id).first()
        if waiver is None:
            raise Http404
        form = WaiverRevokeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(
            WaiverSerializer(waiving.revoke(request.user, waiver, form.validated_data["reason"])).data
        )

    @extend_schema(
        summary="Take a transition (withdraw, cancel, close, unschedule, rework, reschedule…)",
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
        name, data = form.validated_data["name"], {}
        if name == "rework":
            data = {"release": form.validated_data.get("release")}
        elif name == "submit" and form.validated_data.get("standard_change"):
            data = {"standard_change": str(form.validated_data["standard_change"])}
        rfc = wf.transition(
            request.user, rfc, form.validated_data["name"], form.validated_data["reason"], data=data
        )
        return self._detail(rfc)
