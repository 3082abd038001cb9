from django.db import models

from environments.admin_site import AuditedAdmin, portal_admin
from releases.models import Release, RiskQuestion


class ReleaseAdmin(AuditedAdmin):
    list_display = ("product", "version", "artifact_sha256", "created_by", "created_at")
    search_fields = ("product", "version")
    list_select_related = ("created_by",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


portal_admin.register(Release, ReleaseAdmin)


class RiskQuestionAdmin(AuditedAdmin):
    """The risk questionnaire (releases/risk.py): changes apply to RFCs saved from then on; an RFC's
    answers and score are part of its signed content."""

    list_display = ("text", "key", "weight", "computed", "high_at", "position", "active")
    list_filter = ("active",)
    ordering = ("position", "key")


portal_admin.register(RiskQuestion, RiskQuestionAdmin)
