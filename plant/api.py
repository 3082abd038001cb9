from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import ERRORS, ApiPagination
from environments import access, items
from environments.models import ConfigurationItem, Environment, ItemKind, RefreshRun, Site, validate_semver
from environments.services import CONFIG_FIELDS, update_environment


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = [
            "code",
            "name",
            "timezone",
            "country",
            "subdivision",
            "block_fridays",
            "quarter_close_days",
            "rollout_ring",
        ]


class ProductVersionSerializer(serializers.Serializer):
    product = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=64, validators=[validate_semver])


class EnvironmentSerializer(serializers.ModelSerializer):
    """`active_version` is the version of the environment's product when it runs exactly one, else
    that of the product updated last ("" when none); `products` lists every product with its version.
    A PATCH may set `active_version` (an environment running at most one product) or `products`
    (each named product gets that version; a product not named keeps its own)."""

    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    active_version = serializers.CharField(required=False, max_length=64, validators=[validate_semver])
    products = ProductVersionSerializer(many=True, required=False)
    reason = serializers.CharField(write_only=True, required=True, help_text="Recorded in the audit trail.")

    class Meta:
        model = Environment
        fields = [
            "id",
            "site",
            "tier",
            "purpose",
            "data_policy",
            "access_policy",
            "sla",
            "equipment_writes",
            "windows_enforced",
            "smoke_test_minutes",
            "rollback_budget_minutes",
            "active_version",
            "products",
            "data_refreshed_at",
            "reason",
        ]
        read_only_fields = ["id", "site", "tier", "data_refreshed_at"]

    def update(self, instance, validated_data):
        reason = validated_data.pop("reason", "")
        if "products" in validated_data:
            validated_data["versions"] = {
                row["product"]: row["version"] for row in validated_data.pop("products")
            }
        return update_environment(self.context["request"].user, instance, validated_data, reason)


class RefreshRunSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.__str__", read_only=True)
    target = serializers.CharField(source="target.__str__", read_only=True)

    class Meta:
        model = RefreshRun
        fields = [
            "id",
            "source",
            "target",
            "state",
            "created_at",
            "started_at",
            "finished_at",
            "bytes",
            "duration_seconds",
            "masked",
            "error",
        ]
        read_only_fields = fields


class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SiteSerializer
    lookup_field = "code"

    def get_queryset(self):
        return access.visible_sites(self.request.user).order_by("code")


class EnvironmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """Environments of the sites the caller may see. PATCH needs the "configure" action (and, for
    the active version, "set_version": in PROD only a system admin, E4)."""

    serializer_class = EnvironmentSerializer
    http_method_names = ["get", "patch", "post", "head", "options"]

    def get_queryset(self):
        queryset = Environment.objects.filter(site__in=access.visible_sites(self.request.user))
        site = self.request.query_params.get("site")
        if site:
            queryset = queryset.filter(site__code=site)
        tier = self.request.query_params.get("tier")
        if tier:
            queryset = queryset.filter(tier=tier.upper())
        return queryset.select_related("site").prefetch_related("products").order_by("site__code", "tier")

    @extend_schema(
        summary="Refresh this environment's data from PROD, masked",
        request=None,
        responses={202: RefreshRunSerializer},
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        from plant.evidence import request_refresh

        run = request_refresh(request.user, self.get_object())
        return Response(RefreshRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Refresh history", responses={200: RefreshRunSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)
    def refreshes(self, request, *args, **kwargs):
        runs = RefreshRun.objects.filter(target=self.get_object()).select_related(
            "source", "source__site", "target", "target__site"
        )[:50]
        return Response(RefreshRunSerializer(runs, many=True).data)

    @extend_schema(
        summary="Drift against the next tier",
        responses=inline_serializer(
            "Drift",
            {
                "environment": serializers.CharField(),
                "against": serializers.CharField(),
                "differences": serializers.ListField(child=serializers.CharField()),
                "fingerprint": serializers.DictField(),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def drift(self, request, *args, **kwargs):
        from plant.evidence import drift_against_neighbour

        env = self.get_object()
        other, differences = drift_against_neighbour(env)
        return Response(
            {
                "environment": str(env),
                "against": str(other or ""),
                "differences": differences,
                "fingerprint": env.fingerprint,
            }
        )


assert set(CONFIG_FIELDS) <= set(EnvironmentSerializer.Meta.fields)


# --- Configuration items (issue 16 item 4) -------------------------------------------------------
class ConfigurationItemSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", queryset=Site.objects.all())

    class Meta:
        model = ConfigurationItem
        fields = ["id", "site", "kind", "name", "description", "active"]
        read_only_fields = ["id", "active"]
        validators = []  # the service says "already" in words

    def create(self, validated):
        return items.create(
            self.context["request"].user,
            validated["site"],
            validated["kind"],
            validated["name"],
            validated.get("description", ""),
        )


class ItemImportSerializer(serializers.Serializer):
    csv = serializers.CharField(
        trim_whitespace=False,
        help_text="CSV text with the header site,kind,name,description (kind: line, module, interface, product).",
    )


class ConfigurationItemViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Each site's lines, modules, interfaces and products (filter by `site` code and `kind`). An admin of
    the site adds them one by one or imports a CSV (all rows or none, each bad row named by its line)."""

    serializer_class = ConfigurationItemSerializer
    pagination_class = ApiPagination

    def get_queryset(self):
        queryset = ConfigurationItem.objects.filter(site__in=access.visible_sites(self.request.user))
        site = self.request.query_params.get("site")
        if site:
            queryset = queryset.filter(site__code=site[:20])
        kind = self.request.query_params.get("kind")
        if kind in ItemKind.values:
            queryset = queryset.filter(kind=kind)
        return queryset.select_related("site").order_by("site__code", "kind", "name")

    @extend_schema(
        summary="Import configuration items from CSV (all rows or none)",
        request=ItemImportSerializer,
        responses={
            200: inline_serializer(
                "ItemImportResult",
                {
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                    "unchanged": serializers.IntegerField(),
                },
            ),
            400: ERRORS[400],
            403: ERRORS[403],
        },
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_csv(self, request, *args, **kwargs):
        form = ItemImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(items.import_csv(request.user, form.validated_data["csv"]))
