"""Directory sign-in in the portal admin: the group → role mapping (editable, audited) and the
directory identities (read only)."""

from django.contrib import admin

from environments.admin_site import AdminRoleOnly, AuditedAdmin, portal_admin

from .models import DirectoryGroupMapping, DirectoryIdentity


class DirectoryGroupMappingAdmin(AuditedAdmin):
    list_display = ["group", "source", "role", "site"]
    list_filter = ["source", "role", "site"]
    search_fields = ["group"]
    fields = ["source", "group", "role", "site"]


class DirectoryIdentityAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ["user", "source", "username_at_source", "issuer", "subject", "last_sync_at"]
    list_filter = ["source"]
    search_fields = ["user__username", "username_at_source", "subject"]
    readonly_fields = [
        "user",
        "source",
        "issuer",
        "subject",
        "username_at_source",
        "created_at",
        "last_sync_at",
    ]

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


portal_admin.register(DirectoryGroupMapping, DirectoryGroupMappingAdmin)
portal_admin.register(DirectoryIdentity, DirectoryIdentityAdmin)
