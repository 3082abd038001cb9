from django.db import models

from environments.admin_site import AuditedAdmin, portal_admin
from releases.models import Release


class ReleaseAdmin(AuditedAdmin):
    list_display = ("product", "version", "artifact_sha256", "created_by", "created_at")
    search_fields = ("product", "version")
    list_select_related = ("created_by",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


portal_admin.register(Release, ReleaseAdmin)
