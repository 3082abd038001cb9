"""Forms for an RFC's content and for releases: each field's errors come from the service that refuses."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy, ngettext

from core.inputs import no_line_breaks
from environments import access
from releases import risk
from releases.models import RISK_SCALE, EvidenceKind, Release, Rfc
from releases.services import FILERS, RFC_FIELDS


def split_names(value: str) -> list[str]:
    """ "Line 2, Line 3" or one per row → ["Line 2", "Line 3"]."""
    parts = [p.strip() for chunk in (value or "").splitlines() for p in chunk.split(",")]
    return [p for p in parts if p]


class ServiceErrors:
    """Forms here shape input only; the services refuse. This puts a refusal next to its field."""

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


def release_choices() -> list[tuple]:
    """The release picker's options: by product, the newest version first (semantic order, not text:
    2.10.0 before 2.9.1)."""
    from releases.versioning import sort_key

    releases = sorted(Release.objects.all(), key=lambda r: (r.product, sort_key(r.version)))
    by_product: dict[str, list[Release]] = {}
    for release in releases:
        by_product.setdefault(release.product, []).append(release)
    choices: list[tuple] = [("", "---------")]
    for product in sorted(by_product):
        choices += [(r.pk, str(r)) for r in reversed(by_product[product])]
    return choices


class RfcForm(ServiceErrors, forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200, validators=[no_line_breaks])
    description = forms.CharField(
        label=gettext_lazy("Description"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("What changes and why, in the plant's words."),
    )
    release = forms.ModelChoiceField(
        label=gettext_lazy("Release"),
        queryset=Release.objects.order_by("product", "-created_at"),
        help_text=gettext_lazy("The class of change is computed from it against each site's PROD."),
    )
    estimated_downtime_minutes = forms.IntegerField(
        label=gettext_lazy("Estimated downtime (minutes)"),
        min_value=0,
        max_value=24 * 60,
        initial=0,
        help_text=gettext_lazy("Production downtime the change needs. A major change needs more than 0."),
    )
    retraining_note = forms.CharField(
        label=gettext_lazy("Retraining note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Operator retraining; required for a major change."),
    )
    rollback_plan = forms.CharField(
        label=gettext_lazy("Rollback plan"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("The exact undo script or steps."),
    )
    high_risk = forms.BooleanField(
        required=False,
        label=gettext_lazy("Treat as high risk whatever the assessment says"),
        help_text=gettext_lazy(
            "Adds the business approval step and the high-risk evidence even for a patch."
        ),
    )
    requested_timing = forms.CharField(
        label=gettext_lazy("Requested timing"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("When you would like it in PROD, e.g. 'next Tuesday morning window'."),
    )
    emergency = forms.BooleanField(
        required=False,
        label=gettext_lazy("Emergency change"),
        help_text=gettext_lazy(
            "Approved by the CIO or the Plant Director, may run outside the windows, "
            "reviewed by the normal chain within 5 days."
        ),
    )
    emergency_reason = forms.CharField(
        label=gettext_lazy("Emergency reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Why it cannot wait for the next window."),
    )

    dependencies = forms.CharField(
        label=gettext_lazy("Dependencies it touches"),
        required=False,
        max_length=1500,
        help_text=gettext_lazy(
            "External systems the change talks to, as named in the sites' dependency registers "
            "(e.g. ERP, WMS), separated by commas."
        ),
    )

    def __init__(self, *args, user, rfc: Rfc | None = None, **kwargs):
        if rfc is not None and not kwargs.get("data"):
            kwargs.setdefault(
                "initial",
                {
                    "title": rfc.title,
                    "description": rfc.description,
                    "release": rfc.release_id,
                    "estimated_downtime_minutes": rfc.estimated_downtime_minutes,
                    "retraining_note": rfc.retraining_note,
                    "rollback_plan": rfc.rollback_plan,
                    "high_risk": rfc.high_risk,
                    "requested_timing": rfc.requested_timing,
                    "emergency": rfc.emergency,
                    "emergency_reason": rfc.emergency_reason,
                    "dependencies": ", ".join(rfc.dependencies),
                },
            )
        super().__init__(*args, **kwargs)
        # htmx: choosing the release or a site shows the class of change at once.
        live = {
            "data-hx-get": reverse("releases:classify"),
            "data-hx-include": "closest form",
            "data-hx-target": "#classify",
            "data-hx-swap": "outerHTML",
            "data-hx-trigger": "change",
        }
        self.fields["release"].widget.attrs.update(live)
        self.fields["release"].choices = release_choices()
        # The risk questions the author answers (the number of sites is counted, not asked).
        answers = rfc.risk_answers if rfc is not None else {}
        self.risk_fields = []
        for question in risk.questions():
            if question.computed:
                continue
            name = f"risk_{question.key}"
            self.fields[name] = forms.TypedChoiceField(
                label=question.text,
                choices=RISK_SCALE,
                coerce=int,
                empty_value=None,
                required=False,
                initial=answers.get(question.key),
                help_text=question.help_text,
                widget=forms.RadioSelect,
            )
            self.risk_fields.append(self[name])
        self.user = user
        self.rfc = rfc
        self.sites = [
            s for s in access.visible_sites(user).order_by("code") if access.has_any_role(user, FILERS, s)
        ]
        current = {i.site_id: i for i in rfc.impacts.all()} if rfc is not None else {}
        self.site_rows = []
        for site in self.sites:
            impact = current.get(site.pk)
            prefix = f"site_{site.code}"
            self.fields[f"{prefix}_on"] = forms.BooleanField(
                required=False,
                label=f"{site.code} — {site.name}",
                initial=impact is not None,
                widget=forms.CheckboxInput(attrs=live),
            )
            self.fields[f"{prefix}_lines"] = forms.CharField(
                required=False,
                label=gettext("Affected lines"),
                initial=", ".join(impact.lines) if impact else "",
                widget=forms.TextInput(attrs={"placeholder": gettext("Line 1, Line 2")}),
            )
            self.fields[f"{prefix}_modules"] = forms.CharField(
                required=False,
                label=gettext("Affected modules"),
                initial=", ".join(impact.modules) if impact else "",
                widget=forms.TextInput(attrs={"placeholder": gettext("Labelling, Weighing")}),
            )
            self.fields[f"{prefix}_interfaces"] = forms.CharField(
                required=False,
                label=gettext("Affected interfaces"),
                initial=", ".join(impact.interfaces) if impact else "",
                widget=forms.TextInput(attrs={"placeholder": gettext("ERP orders, WMS")}),
            )
            self.fields[f"{prefix}_notes"] = forms.CharField(
                required=False, label=gettext("Notes"), initial=impact.notes if impact else ""
            )
            self.site_rows.append(
                {
                    "site": site,
                    "on": self[f"{prefix}_on"],
                    "lines": self[f"{prefix}_lines"],
                    "modules": self[f"{prefix}_modules"],
                    "interfaces": self[f"{prefix}_interfaces"],
                    "notes": self[f"{prefix}_notes"],
                }
            )

    def impacts(self) -> list[dict]:
        result = []
        for site in self.sites:
            prefix = f"site_{site.code}"
            if self.cleaned_data.get(f"{prefix}_on"):
                result.append(
                    {
                        "site": site,
                        "lines": split_names(self.cleaned_data[f"{prefix}_lines"]),
                        "modules": split_names(self.cleaned_data[f"{prefix}_modules"]),
                        "interfaces": split_names(self.cleaned_data[f"{prefix}_interfaces"]),
                        "notes": self.cleaned_data[f"{prefix}_notes"],
                    }
                )
        return result

    def clean(self):
        data = super().clean()
        if not self.errors and not self.impacts():
            raise ValidationError(
                gettext("Tick at least one target site and name its affected lines or modules.")
            )
        return data

    def fields_for_service(self) -> dict:
        answers = {
            bound.name.removeprefix("risk_"): self.cleaned_data[bound.name]
            for bound in self.risk_fields
            if self.cleaned_data.get(bound.name) is not None
        }
        fields = {name: self.cleaned_data[name] for name in RFC_FIELDS}
        fields["dependencies"] = split_names(fields["dependencies"])
        return {**fields, "risk_answers": answers}


class ReleaseForm(ServiceErrors, forms.Form):
    product = forms.CharField(
        label=gettext_lazy("Product"),
        max_length=100,
        help_text=gettext_lazy("Product or module, e.g. MES or ERP-interface."),
    )
    version = forms.CharField(
        label=gettext_lazy("Version"),
        max_length=64,
        help_text=gettext_lazy("Semantic version, MAJOR.MINOR.PATCH."),
    )
    notes = forms.CharField(
        label=gettext_lazy("Release notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    artifact = forms.FileField(
        label=gettext_lazy("Artifact"),
        required=False,
        help_text=gettext_lazy("Upload the build; its SHA-256 is recorded now."),
    )
    artifact_url = forms.URLField(
        label=gettext_lazy("…or artifact URL"), required=False, assume_scheme="https"
    )
    artifact_sha256 = forms.CharField(
        label=gettext_lazy("SHA-256 of the URL's file"), max_length=64, required=False
    )
    migration_sql = forms.CharField(
        label=gettext_lazy("SQL migration"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
    )
    undo_sql = forms.CharField(
        label=gettext_lazy("Undo script"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text=gettext_lazy("Required when there is a migration."),
    )
    flags = forms.CharField(
        label=gettext_lazy("Feature flags"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text=gettext_lazy(
            "One per line, key: what turning it on does; end the line with [safe] when it may be switched "
            "outside a deployment window. Each site turns them on later, as a standard change."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["config_files"] = MultipleFileField(
            label=gettext_lazy("Configuration bundles"),
            required=False,
            help_text=gettext_lazy(
                "JSON files, each a flat set of settings (ERP settings, workflow rules, integration mappings); "
                "the file's name is the bundle's. Without an artifact, the release changes configuration only."
            ),
        )

    def clean_config_files(self):
        from environments import config

        files = [f for f in self.cleaned_data.get("config_files") or [] if f]
        try:
            return config.from_files(files)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["config"]) from None

    def clean_flags(self):
        from releases import flags

        try:
            return flags.parse(self.cleaned_data["flags"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["flags"]) from None


MAX_FILES_PER_UPLOAD = 10


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or several files from one input; each is checked like a single file."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        files = (
            [single(item, initial) for item in data]
            if isinstance(data, (list, tuple))
            else [single(data, initial)]
        )
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise forms.ValidationError(
                ngettext(
                    "Upload at most %(count)s file at once.",
                    "Upload at most %(count)s files at once.",
                    MAX_FILES_PER_UPLOAD,
                )
                % {"count": MAX_FILES_PER_UPLOAD}
            )
        return files


class EvidenceForm(forms.Form):
    file = MultipleFileField(
        label=gettext_lazy("Files"), help_text=gettext_lazy("One or several files; all are added, or none.")
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=EvidenceKind.choices)
    description = forms.CharField(label=gettext_lazy("Description"), max_length=300, required=False)
    supersedes = forms.UUIDField(required=False, widget=forms.HiddenInput)


class SignoffForm(forms.Form):
    site = forms.CharField(label=gettext_lazy("Site"))
    comment = forms.CharField(
        label=gettext_lazy("Comment"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("What you tested in UAT and what you saw."),
    )
