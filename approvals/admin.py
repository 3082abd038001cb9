from django.contrib import admin
from django.utils.translation import gettext_lazy

from approvals.models import Absence, ApprovalPolicy, PolicyStep
from environments.admin_site import AdminRoleOnly, AuditedAdmin, portal_admin


class PolicyStepInline(AdminRoleOnly, admin.TabularInline):
    model = PolicyStep
    extra = 1
    ordering = ("order",)


class ApprovalPolicyAdmin(AuditedAdmin):
    """The chain per class of change (A1–A3). A high-risk RFC adds the business step (A4)."""

    list_display = ("change_class", "chain", "updated_at")
    inlines = [PolicyStepInline]

    @admin.display(description=gettext_lazy("Chain"))
    def chain(self, obj):
        return " → ".join(str(step) for step in obj.steps.all())

    def audit_snapshot(self, obj) -> dict:
        return {
            "change_class": obj.change_class,
            "description": obj.description,
            "steps": [
                {"order": s.order, "roles": s.roles, "rule": s.rule} for s in obj.steps.order_by("order")
            ],
        }


class AbsenceAdmin(AuditedAdmin):
    list_display = ("user", "delegate", "starts_at", "ends_at", "cancelled_at")
    list_select_related = ("user", "delegate")


portal_admin.register(ApprovalPolicy, ApprovalPolicyAdmin)
portal_admin.register(Absence, AbsenceAdmin)
