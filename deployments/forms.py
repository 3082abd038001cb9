"""The scheduling form: a PROD slot per site, in the site's local time."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.inputs import check_moment
from core.roles import Role
from deployments.scheduling import default_duration, parse_local
from environments import access


class ScheduleForm(forms.Form):
    """The PROD start for one site, typed in the site's local time or picked from the next slots."""

    site = forms.ChoiceField()
    duration = forms.IntegerField(
        label=gettext_lazy("Deployment duration (minutes)"),
        min_value=1,
        max_value=12 * 60,
        help_text=gettext_lazy("The deployment itself; the smoke test and the rollback budget are added."),
    )
    start = forms.CharField(
        required=False,
        label=gettext_lazy("Start (site's local time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    slot = forms.DateTimeField(required=False, widget=forms.HiddenInput, validators=[check_moment])
    handover_override = forms.BooleanField(
        required=False, label=gettext_lazy("Plant Director: allow a start inside a shift handover")
    )
    acknowledge_conflicts = forms.BooleanField(
        required=False, label=gettext_lazy("I have checked the changes listed above and book beside them")
    )

    def __init__(self, *args, rfc, user, sites, **kwargs):
        super().__init__(*args, **kwargs)

        self.rfc, self.sites = rfc, {s.code: s for s in sites}
        self.fields["site"].choices = [(s.code, f"{s.code} — {s.name} ({s.timezone})") for s in sites]
        self.fields["duration"].initial = default_duration(rfc)
        live = {
            "data-hx-get": reverse("releases:schedule", args=[rfc.uuid]),
            "data-hx-include": "closest form",
            "data-hx-target": "#slots",
            "data-hx-swap": "outerHTML",
            "data-hx-trigger": "change",
        }
        self.fields["site"].widget.attrs.update(live)
        self.fields["duration"].widget.attrs.update(
            {**live, "data-hx-trigger": "change, keyup changed delay:400ms"}
        )
        if not rfc.emergency or not any(access.has_role(user, Role.PLANT_DIRECTOR, s) for s in sites):
            del self.fields["handover_override"]

    def clean_site(self):
        return self.sites[self.cleaned_data["site"]]

    def clean(self):
        data = super().clean()
        data.setdefault("handover_override", False)
        if not self.errors and not data.get("slot") and not data.get("start"):
            raise ValidationError(_("Pick one of the offered slots or type a start."))
        return data

    def site_choice(self):
        code = self.data.get("site") if self.is_bound else None
        return self.sites.get(code) or next(iter(self.sites.values()), None)

    def duration_choice(self) -> int:

        try:
            value = int(self.data.get("duration", "")) if self.is_bound else 0
        except ValueError:
            value = 0
        return value if 0 < value <= 12 * 60 else default_duration(self.rfc)

    def start_utc(self):

        if self.cleaned_data.get("slot"):
            return parse_local(self.cleaned_data["slot"], self.cleaned_data["site"].zone)
        return parse_local(self.cleaned_data["start"], self.cleaned_data["site"].zone)
