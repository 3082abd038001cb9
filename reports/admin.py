from django.contrib import admin

from audit.models import AuditEvent
from environments import access
from environments.admin_site import portal_admin


class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("seq", "occurred_at", "actor_name", "action", "object_type", "object_id")
    list_filter = ("action",)
    search_fields = ("action", "actor_name", "object_id", "object_repr")
    ordering = ("-seq",)

    def has_module_permission(self, request):
        return access.can(request.user, "read_audit")

    def has_view_permission(self, request, obj=None):
        return access.can(request.user, "read_audit")

    # Append-only: the admin can read the trail, never change it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


portal_admin.register(AuditEvent, AuditEventAdmin)
