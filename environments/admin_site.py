"""The Django admin, restricted to the Admin role and audited with a reason for every change."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.forms.models import model_to_dict
from django.utils.translation import gettext_lazy

from audit.services import record
from environments import access


class PortalAdminSite(admin.AdminSite):
    site_header = gettext_lazy("Plant Change Control — administration")
    site_title = "Plant Change Control"
    index_title = gettext_lazy("Configuration")

    def has_permission(self, request):
        return request.user.is_active and access.can(request.user, "admin_site")


def _snapshot(obj) -> dict:
    return {key: value for key, value in model_to_dict(obj).items() if not hasattr(value, "read")}


class AdminRoleOnly:
    """Admin pages (and their inlines) are for the Admin role, whatever Django's model permissions say."""

    def _allowed(self, request) -> bool:
        return access.can(request.user, "admin_site")

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


class AuditedAdmin(AdminRoleOnly, admin.ModelAdmin):
    """Every add, change and delete lands in the audit trail with before/after and a reason."""

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_add_permission(self, request):
        return self._allowed(request)

    def audit_snapshot(self, obj) -> dict:
        """What "before" and "after" hold; an admin with inlines adds their rows."""
        return _snapshot(obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The reason is a form-only field: keep it out of the model form's field list.
        if "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"] is not None:
            kwargs["fields"] = [name for name in kwargs["fields"] if name != "audit_reason"]
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["audit_reason"] = forms.CharField(
            label=gettext_lazy("Reason for this change"),
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text=gettext_lazy("Recorded in the audit trail."),
        )
        return form

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        names = [f for _, opts in fieldsets for f in opts["fields"]]
        if "audit_reason" not in names:
            fieldsets = [*fieldsets, (gettext_lazy("Audit"), {"fields": ["audit_reason"]})]
        return fieldsets

    def _action(self, obj, verb: str) -> str:
        return f"{obj._meta.app_label}.{obj._meta.model_name}.{verb}"

    def save_model(self, request, obj, form, change):
        form._audit_before = (
            self.audit_snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        # Recorded after the many-to-many fields (groups, permissions) are saved, so "after" is whole.
        super().save_related(request, form, formsets, change)
        obj = form.instance
        record(
            self._action(obj, "updated" if change else "created"),
            obj,
            actor=request.user,
            before=getattr(form, "_audit_before", None),
            after=self.audit_snapshot(obj),
            reason=form.cleaned_data.get("audit_reason", ""),
        )

    def delete_model(self, request, obj):
        before = self.audit_snapshot(obj)
        record(
            self._action(obj, "deleted"),
            obj,
            actor=request.user,
            before=before,
            reason="deleted in administration",
        )
        super().delete_model(request, obj)


portal_admin = PortalAdminSite(name="admin")


def _register_accounts() -> None:
    from django.contrib.auth.admin import GroupAdmin, UserAdmin
    from django.contrib.auth.models import Group, User

    class PortalUserAdmin(AuditedAdmin, UserAdmin):
        pass

    class PortalGroupAdmin(AuditedAdmin, GroupAdmin):
        pass

    portal_admin.register(User, PortalUserAdmin)
    portal_admin.register(Group, PortalGroupAdmin)


_register_accounts()
