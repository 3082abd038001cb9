"""The user admin gains "Reset two-step sign-in": for a lost phone, with a reason, audited."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.template.response import TemplateResponse

from accounts import mfa
from environments.admin_site import portal_admin


@admin.action(description="Reset two-step sign-in (removes the authenticator and recovery codes)")
def reset_mfa(modeladmin, request, queryset):
    reason = request.POST.get("mfa_reset_reason", "").strip()
    if request.POST.get("mfa_reset_confirm") and reason:
        reset = [user for user in queryset if mfa.reset(user, actor=request.user, reason=reason)]
        names = ", ".join(user.get_username() for user in queryset)
        modeladmin.message_user(
            request,
            f"Two-step sign-in reset for {names}. Each sets it up again at their next sign-in"
            + ("." if reset else " (none had it set up)."),
            messages.SUCCESS,
        )
        return None
    return TemplateResponse(
        request,
        "accounts/admin_reset_mfa.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Reset two-step sign-in",
            "users": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
            "missing_reason": bool(request.POST.get("mfa_reset_confirm")) and not reason,
        },
    )


_user_admin = portal_admin.get_model_admin(User)
_user_admin.actions = [*(_user_admin.actions or ()), reset_mfa]
