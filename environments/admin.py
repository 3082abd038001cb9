from guardian.admin import GuardedModelAdminMixin

from changecontrol.admin import AuditedAdmin, portal_admin
from environments.models import Environment, Site


class SiteAdmin(GuardedModelAdminMixin, AuditedAdmin):
    """Site-scoped roles are granted on the "Object permissions" page of a site (django-guardian)."""

    list_display = ("code", "name", "timezone", "country", "subdivision")
    search_fields = ("code", "name")


class EnvironmentAdmin(AuditedAdmin):
    list_display = ("site", "tier", "active_version", "equipment_writes", "data_refreshed_at")
    list_filter = ("tier", "site")
    list_select_related = ("site",)


portal_admin.register(Site, SiteAdmin)
portal_admin.register(Environment, EnvironmentAdmin)
