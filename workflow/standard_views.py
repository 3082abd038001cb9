"""Standard change pages: the templates (an admin proposes one), a template with its chain, its
signatures and every RFC that used it; the approvers sign it here with their password."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_http_methods, require_POST

from approvals import standard
from approvals.models import StandardChange
from core.refusals import REFUSED, refusal
from core.roles import Role
from environments import access
from environments.models import Site
from releases.forms import ServiceErrors, split_names
from releases.versioning import ChangeClass


class TemplateForm(ServiceErrors, forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=120,
        help_text=gettext_lazy("The routine work, e.g. Label template update."),
    )
    description = forms.CharField(
        label=gettext_lazy("Description"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("What the work is and how it is done safely."),
    )
    products = forms.CharField(
        label=gettext_lazy("Products"),
        max_length=300,
        help_text=gettext_lazy("Products it covers, comma-separated, e.g. MES."),
    )
    sites = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Sites"), queryset=Site.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    max_class = forms.ChoiceField(
        label=gettext_lazy("Highest class of change"), choices=ChangeClass.choices, initial=ChangeClass.PATCH
    )
    expires_on = forms.DateField(
        label=gettext_lazy("Expires on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("Two years at most."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sites"].queryset = admin_sites(user)


def admin_sites(user):
    """The sites where `user` is an admin (everywhere for a global admin)."""
    if access.has_role(user, Role.ADMIN):
        return Site.objects.order_by("code")
    return Site.objects.filter(pk__in=access.sites_with_role(user, Role.ADMIN)).order_by("code")


def _may_propose(user) -> bool:
    return access.has_role(user, Role.ADMIN) or bool(access.sites_with_role(user, Role.ADMIN))


@login_required
@require_http_methods(["GET", "POST"])
def template_list(request):
    may_propose = _may_propose(request.user)
    form = TemplateForm(request.POST or None, user=request.user) if may_propose else None
    status = 200
    if request.method == "POST":
        if form is None:
            return render(request, "errors/403.html", status=403)
        if form.is_valid():
            data = form.cleaned_data
            try:
                template = standard.propose(
                    request.user,
                    name=data["name"],
                    description=data["description"],
                    products=split_names(data["products"]),
                    sites=list(data["sites"]),
                    max_class=data["max_class"],
                    expires_at=datetime.combine(data["expires_on"], time(23, 59)).astimezone(),
                )
            except REFUSED as exc:
                if hasattr(exc, "error_dict"):
                    form.add_service_errors(exc)
                else:
                    form.add_error(None, refusal(exc).message)
            else:
                messages.success(
                    request, _("%(name)s proposed: the approvers sign it now.") % {"name": template.name}
                )
                return redirect("approvals:standard", uuid=template.uuid)
        status = 400
    templates = StandardChange.objects.prefetch_related("sites").order_by("state", "name")
    return render(
        request,
        "approvals/standard_list.html",
        {"templates": templates, "form": form},
        status=status,
    )


def _detail(request, template: StandardChange, status: int = 200, error: str = ""):
    return render(
        request,
        "approvals/standard_detail.html",
        {
            "template": template,
            "steps": standard.steps_text(template),
            "open": [
                (" " + pgettext("roles, one signs", "or") + " ").join(str(Role(r).label) for r in roles)
                for roles in standard.open_steps(template)
            ]
            if template.state == "proposed"
            else [],
            "signatures": template.signatures.select_related("signed_by"),
            "uses": template.uses.select_related("rfc", "used_by"),
            "may_sign": template.state == "proposed"
            and standard.signable_role(request.user, template) is not None,
            "may_suspend": template.state == "active"
            and all(access.has_role(request.user, Role.ADMIN, s) for s in template.sites.all()),
            "error": error,
        },
        status=status,
    )


@login_required
def template_detail(request, uuid):
    return _detail(request, get_object_or_404(StandardChange.objects.prefetch_related("sites"), uuid=uuid))


@login_required
@require_POST
def template_sign(request, uuid):
    template = get_object_or_404(StandardChange, uuid=uuid)
    try:
        standard.sign(
            request.user,
            template,
            request.POST.get("password", ""),
            otp_code=request.POST.get("otp_code", ""),
        )
    except REFUSED as exc:
        found = refusal(exc)
        return _detail(request, template, status=found.status, error=found.message)
    messages.success(request, _("You signed %(name)s.") % {"name": template.name})
    return redirect("approvals:standard", uuid=template.uuid)


@login_required
@require_POST
def template_suspend(request, uuid):
    template = get_object_or_404(StandardChange, uuid=uuid)
    try:
        standard.suspend(template, request.POST.get("reason", ""), actor=request.user)
    except REFUSED as exc:
        found = refusal(exc)
        return _detail(request, template, status=found.status, error=found.message)
    messages.success(request, _("%(name)s suspended.") % {"name": template.name})
    return redirect("approvals:standard", uuid=template.uuid)
