from django.db import models

from environments.admin_site import AuditedAdmin, portal_admin
from hooks.models import ChatEndpoint, Delivery, Webhook


class HttpsAdmin(AuditedAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


class WebhookAdmin(HttpsAdmin):
    list_display = ["name", "site", "format", "active", "created_at"]
    list_filter = ["format", "active", "site"]
    readonly_fields = ["secret", "created_by", "created_at"]


class DeliveryAdmin(HttpsAdmin):
    list_display = ["kind", "url", "state", "attempts", "status_code", "created_at"]
    list_filter = ["state", "format"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request):
        return False


class ChatEndpointAdmin(HttpsAdmin):
    list_display = ["user", "format"]


portal_admin.register(Webhook, WebhookAdmin)
portal_admin.register(Delivery, DeliveryAdmin)
portal_admin.register(ChatEndpoint, ChatEndpointAdmin)
