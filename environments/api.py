from rest_framework import mixins, serializers, viewsets

from changecontrol import access
from environments.models import Environment, Site
from environments.services import CONFIG_FIELDS, update_environment


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["code", "name", "timezone", "country", "subdivision", "block_fridays", "quarter_close_days"]


class EnvironmentSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    reason = serializers.CharField(write_only=True, required=True, help_text="Recorded in the audit trail.")

    class Meta:
        model = Environment
        fields = ["id", "site", "tier", "purpose", "data_policy", "access_policy", "sla",
                  "equipment_writes", "windows_enforced", "smoke_test_minutes", "rollback_budget_minutes",
                  "active_version", "data_refreshed_at", "reason"]
        read_only_fields = ["id", "site", "tier", "data_refreshed_at"]

    def update(self, instance, validated_data):
        reason = validated_data.pop("reason", "")
        return update_environment(self.context["request"].user, instance, validated_data, reason)


class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SiteSerializer
    lookup_field = "code"

    def get_queryset(self):
        return access.visible_sites(self.request.user).order_by("code")


class EnvironmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                         viewsets.GenericViewSet):
    """Environments of the sites the caller may see. PATCH needs the "configure" action (and, for
    the active version, "set_version": in PROD only a system admin, E4)."""

    serializer_class = EnvironmentSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        queryset = Environment.objects.filter(site__in=access.visible_sites(self.request.user))
        site = self.request.query_params.get("site")
        if site:
            queryset = queryset.filter(site__code=site)
        tier = self.request.query_params.get("tier")
        if tier:
            queryset = queryset.filter(tier=tier.upper())
        return queryset.select_related("site").order_by("site__code", "tier")



assert set(CONFIG_FIELDS) <= set(EnvironmentSerializer.Meta.fields)
