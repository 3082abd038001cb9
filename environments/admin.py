from django import forms
from django.contrib import admin
from django.utils.translation import gettext, gettext_lazy
from guardian.admin import GuardedModelAdminMixin

from core import clock
from environments.admin_site import AdminRoleOnly, AuditedAdmin, portal_admin
from environments.models import (
    ConfigurationItem,
    Dependency,
    DeploymentWindow,
    Environment,
    Freeze,
    MaskingRule,
    ProductVersion,
    ShiftHandover,
    Site,
    TimedRoleGrant,
)


class DeploymentWindowInline(AdminRoleOnly, admin.TabularInline):
    model = DeploymentWindow
    extra = 0


class ShiftHandoverInline(AdminRoleOnly, admin.TabularInline):
    model = ShiftHandover
    extra = 0


def _with_reason(form_class):
    """Guardian's object-permission forms, with the reason Annex 11 §9 asks for every change."""

    class WithReason(form_class):
        audit_reason = forms.CharField(
            label=gettext_lazy("Reason for this change"),
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text=gettext_lazy("Recorded in the audit trail with the grant or revocation."),
        )

    return WithReason


class SiteAdmin(GuardedModelAdminMixin, AuditedAdmin):
    """A site and its calendar (W1–W4): windows and handovers inline, audited with their rows.
    Site-scoped roles are granted on the "Object permissions" page of a site (django-guardian)."""

    list_display = (
        "code",
        "name",
        "timezone",
        "country",
        "subdivision",
        "block_fridays",
        "quarter_close_days",
        "rollout_ring",
    )
    list_filter = ("rollout_ring",)
    search_fields = ("code", "name")
    inlines = [DeploymentWindowInline, ShiftHandoverInline]

    def get_obj_perms_manage_user_form(self, request):
        return _with_reason(super().get_obj_perms_manage_user_form(request))

    def get_obj_perms_manage_group_form(self, request):
        return _with_reason(super().get_obj_perms_manage_group_form(request))

    def audit_snapshot(self, obj) -> dict:
        snapshot = super().audit_snapshot(obj)
        snapshot["windows"] = [str(w) for w in obj.windows.order_by("weekday", "starts")]
        snapshot["handovers"] = [str(h) for h in obj.handovers.order_by("at")]
        return snapshot


class ProductVersionInline(AdminRoleOnly, admin.TabularInline):
    """The products an environment runs and their versions (E9). The admin site is the Admin role's
    only, the same role that may set a version by hand in every tier (E4)."""

    model = ProductVersion
    extra = 0
    fields = ("product", "version", "updated_at")
    readonly_fields = ("updated_at",)


class DependencyInline(AdminRoleOnly, admin.TabularInline):
    """The environment's fidelity register (environments/fidelity.py)."""

    model = Dependency
    extra = 0
    fields = ("name", "kind", "criticality", "note")


class EnvironmentAdmin(AuditedAdmin):
    """An environment and, inline, the version of each product it runs and its dependencies; audited
    with those rows."""

    inlines = [ProductVersionInline, DependencyInline]
    list_display = (
        "site",
        "tier",
        "product_versions",
        "windows_enforced",
        "equipment_writes",
        "data_refreshed_at",
    )
    list_filter = ("tier", "site")
    list_select_related = ("site",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("products")

    @admin.display(description=gettext_lazy("Products"))
    def product_versions(self, obj) -> str:
        return ", ".join(f"{product} {version}" for product, version in obj.versions.items()) or "—"

    def audit_snapshot(self, obj) -> dict:
        snapshot = super().audit_snapshot(obj)
        snapshot["versions"] = dict(obj.products.order_by("product").values_list("product", "version"))
        snapshot["dependencies"] = [d.snapshot() for d in obj.dependencies.order_by("name")]
        return snapshot

    def save_formset(self, request, form, formset, change):
        # A version set by hand is stamped now, so the derived active version follows it.
        for row in formset.save(commit=False):
            if isinstance(row, ProductVersion):
                row.updated_at = clock.now()
            row.save()
        for row in formset.deleted_objects:
            row.delete()
        formset.save_m2m()


class FreezeAdmin(AuditedAdmin):
    """One-off freezes (peak season, a shutdown); empty site = every site (W4)."""

    list_display = ("name", "site", "starts_at", "ends_at")
    list_filter = ("site",)
    list_select_related = ("site",)
    search_fields = ("name", "reason")


portal_admin.register(Site, SiteAdmin)
portal_admin.register(Environment, EnvironmentAdmin)
portal_admin.register(Freeze, FreezeAdmin)


class MaskingRuleAdmin(AuditedAdmin):
    """How PROD data is masked before UAT reads it (E3, E6, C4); empty site = every site."""

    list_display = ("table", "column", "method", "site")
    list_filter = ("method", "site")


portal_admin.register(MaskingRule, MaskingRuleAdmin)


class TimedRoleGrantAdmin(AuditedAdmin):
    """Roles granted until a moment (Admin for a maintenance, say): they stop counting at their expiry,
    and the sweep deletes them with an `accounts.grant.expired` event. Listed on the access review."""

    ACTIONS = {"created": "granted", "updated": "changed", "deleted": "revoked"}
    list_display = ("user", "role", "where", "expires_at", "running", "granted_by", "granted_at")
    list_filter = ("role", "site")
    list_select_related = ("user", "site", "granted_by")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    autocomplete_fields = ("user",)
    fields = ("user", "role", "site", "expires_at")

    @admin.display(description=gettext_lazy("Where"))
    def where(self, obj) -> str:
        return obj.site.code if obj.site_id else gettext("Every site")

    @admin.display(description=gettext_lazy("Running"), boolean=True)
    def running(self, obj) -> bool:
        return obj.expires_at > clock.now()

    def _action(self, obj, verb: str) -> str:
        return f"accounts.grant.{self.ACTIONS[verb]}"

    def audit_snapshot(self, obj) -> dict:
        return obj.describe()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.granted_by, obj.granted_at = request.user, clock.now()
        super().save_model(request, obj, form, change)


portal_admin.register(TimedRoleGrant, TimedRoleGrantAdmin)


class ConfigurationItemAdmin(AuditedAdmin):
    """Each site's lines, modules, interfaces and products (issue 16 item 4); many at once through
    `manage.py import_items file.csv` or POST /api/v1/configuration-items/import/."""

    list_display = ("name", "kind", "site", "active", "description")
    list_filter = ("site", "kind", "active")
    search_fields = ("name", "description")
    list_select_related = ("site",)


portal_admin.register(ConfigurationItem, ConfigurationItemAdmin)
