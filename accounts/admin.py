"""The portal admin's views of lockouts (with Unlock), API tokens (with Revoke) and directory sign-in
(the group → role mapping, editable and audited; the directory identities, read only). Its own sign-in
form counts failed passwords like every other password entry. The user admin gains "Reset two-step
sign-in": for a lost phone, with a reason, audited."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy, ngettext

from accounts import lockout, mfa, tokens
from accounts.forms import AdminLockoutAuthenticationForm
from accounts.models import ApiToken, DirectoryGroupMapping, DirectoryIdentity, Lockout
from core import clock
from environments.admin_site import AdminRoleOnly, AuditedAdmin, portal_admin

portal_admin.login_form = AdminLockoutAuthenticationForm


class ReadOnlyAdmin(AdminRoleOnly, admin.ModelAdmin):
    """Rows change only through the audited actions below, never by editing."""

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.display(description=gettext_lazy("Locked until (UTC)"))
def _locked_until(row: Lockout) -> str:
    if row.locked_until and row.locked_until > clock.now():
        return row.locked_until.strftime("%Y-%m-%d %H:%M")
    return gettext("not locked")


class LockoutAdmin(ReadOnlyAdmin):
    list_display = ["scope", "key", "failures", "last_failure_at", _locked_until]
    list_filter = ["scope"]
    search_fields = ["key"]
    actions = ["unlock"]

    @admin.action(
        description=gettext_lazy("Unlock the selected accounts and addresses (and clear their counts)")
    )
    def unlock(self, request, queryset):
        count = 0
        for row in queryset:
            lockout.unlock(row, actor=request.user, reason="unlocked in administration")
            count += 1
        messages.success(
            request, ngettext("Unlocked %(count)d.", "Unlocked %(count)d.", count) % {"count": count}
        )


TOKEN_STATES = {
    "active": gettext_lazy("active"),
    "expired": gettext_lazy("expired"),
    "revoked": gettext_lazy("revoked"),
}


@admin.display(description=gettext_lazy("State"))
def _token_state(token: ApiToken) -> str:
    state = token.state(clock.now())
    return str(TOKEN_STATES.get(state, state))


class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        _token_state,
    ]
    list_filter = ["revoked_at", "expires_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name", "prefix"]
    exclude = ["digest"]
    actions = ["revoke"]

    @admin.action(description=gettext_lazy("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        count = sum(
            tokens.revoke(token, actor=request.user, reason="revoked by an administrator")
            for token in queryset.select_related("user")
        )
        messages.success(
            request, ngettext("Revoked %(count)d.", "Revoked %(count)d.", count) % {"count": count}
        )


class DirectoryGroupMappingAdmin(AuditedAdmin):
    list_display = ["group", "source", "role", "site"]
    list_filter = ["source", "role", "site"]
    search_fields = ["group"]
    fields = ["source", "group", "role", "site"]


class DirectoryIdentityAdmin(ReadOnlyAdmin):
    list_display = ["user", "source", "username_at_source", "issuer", "subject", "last_sync_at"]
    list_filter = ["source"]
    search_fields = ["user__username", "username_at_source", "subject"]


portal_admin.register(DirectoryGroupMapping, DirectoryGroupMappingAdmin)
portal_admin.register(DirectoryIdentity, DirectoryIdentityAdmin)
portal_admin.register(Lockout, LockoutAdmin)
portal_admin.register(ApiToken, ApiTokenAdmin)


@admin.action(
    description=gettext_lazy("Reset two-step sign-in (removes the authenticator and recovery codes)")
)
def reset_mfa(modeladmin, request, queryset):
    reason = request.POST.get("mfa_reset_reason", "").strip()
    if request.POST.get("mfa_reset_confirm") and reason:
        reset = [user for user in queryset if mfa.reset(user, actor=request.user, reason=reason)]
        names = ", ".join(user.get_username() for user in queryset)
        if reset:
            text = gettext(
                "Two-step sign-in reset for %(names)s. Each sets it up again at their next sign-in."
            )
        else:
            text = gettext(
                "Two-step sign-in reset for %(names)s. Each sets it up again at their next sign-in "
                "(none had it set up)."
            )
        modeladmin.message_user(request, text % {"names": names}, messages.SUCCESS)
        return None
    return TemplateResponse(
        request,
        "accounts/admin_reset_mfa.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": gettext("Reset two-step sign-in"),
            "users": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
            "missing_reason": bool(request.POST.get("mfa_reset_confirm")) and not reason,
        },
    )


_user_admin = portal_admin.get_model_admin(User)
_user_admin.actions = [*(_user_admin.actions or ()), reset_mfa]
