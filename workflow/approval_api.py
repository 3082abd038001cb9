"""Approvals API: the caller's pending approvals; approve and reject with the password."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals import services
from approvals.models import Approval, Decision, Signature
from workflow import services as wf
from workflow.serializers import OTP_CODE_HELP, SignerFieldsMixin


class SignatureSerializer(serializers.ModelSerializer):
    signer = serializers.CharField(source="signer.username", read_only=True)
    on_behalf_of = serializers.CharField(
        source="on_behalf_of.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Signature
        fields = [
            "signer",
            "printed_name",
            "on_behalf_of",
            "signed_at",
            "decision",
            "meaning",
            "reason",
            "content_hash",
            "via",
            "voided_at",
            "void_reason",
        ]


class ApprovalSerializer(serializers.ModelSerializer):
    rfc = serializers.UUIDField(source="rfc.uuid", read_only=True)
    rfc_number = serializers.CharField(source="rfc.number", read_only=True)
    rfc_title = serializers.CharField(source="rfc.title", read_only=True)
    change_class = serializers.CharField(source="rfc.change_class", read_only=True)
    site = serializers.CharField(source="site.code", read_only=True)
    step = serializers.IntegerField(source="step.order", read_only=True)
    content_hash = serializers.CharField(source="step.round.content_hash", read_only=True)
    signatures = SignatureSerializer(many=True, read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "rfc",
            "rfc_number",
            "rfc_title",
            "change_class",
            "site",
            "role",
            "step",
            "state",
            "content_hash",
            "signatures",
        ]


class SignSerializer(SignerFieldsMixin, serializers.Serializer):
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        required=False,
        default="",
        help_text="The signer's password, re-entered at every signing (21 CFR 11.200).",
    )
    otp_code = serializers.CharField(
        write_only=True, required=False, allow_blank=True, default="", max_length=16, help_text=OTP_CODE_HELP
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    content_hash = serializers.RegexField(
        r"^[0-9a-f]{64}$", required=False, help_text="Sign only if the RFC's content still has this hash."
    )


class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """`GET approvals/` lists what waits for the caller's signature; `?all=1` every approval of the
    RFCs the caller may see. `approve/`, `request-changes/` and `reject/` sign with the caller's password."""

    serializer_class = ApprovalSerializer

    def get_queryset(self):
        user = self.request.user
        if self.action == "list" and not self.request.query_params.get("all"):
            queryset = services.approvals_for(user)
        else:
            from releases.services import visible_rfcs

            queryset = Approval.objects.filter(rfc__in=visible_rfcs(user))
        return (
            queryset.select_related("rfc", "site", "step", "step__round")
            .prefetch_related("signatures__signer", "signatures__on_behalf_of")
            .order_by("step__activated_at", "id")
        )

    def _sign(self, request, decision: str) -> Response:
        approval = self.get_object()
        body = SignSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        signature = wf.sign(
            request.user,
            approval,
            decision,
            data["password"],
            reason=data["reason"],
            via="api",
            expected_hash=data.get("content_hash"),
            otp_code=data["otp_code"],
        )
        return Response(SignatureSerializer(signature).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SignSerializer, responses={201: SignatureSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._sign(request, Decision.APPROVE)

    @extend_schema(request=SignSerializer, responses={201: SignatureSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._sign(request, Decision.REJECT)

    @extend_schema(request=SignSerializer, responses={201: SignatureSerializer})
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request, pk=None):
        """Send the RFC back to its author with a question (`reason`, required)."""
        return self._sign(request, Decision.CHANGES)
