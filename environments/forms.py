from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from environments.models import Criticality, DependencyKind, Environment, ProductVersion, validate_semver

PRODUCT_MAX = ProductVersion._meta.get_field("product").max_length


class EnvironmentForm(forms.ModelForm):
    """An environment's configuration and, for those who may set them by hand, the version of each
    product it runs (`version_0`, `version_1`… in product order) and a product to add."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Recorded in the audit trail with the change."),
    )

    class Meta:
        model = Environment
        fields = [
            "purpose",
            "data_policy",
            "access_policy",
            "sla",
            "equipment_writes",
            "windows_enforced",
            "smoke_test_minutes",
            "rollback_budget_minutes",
        ]
        widgets = {
            "purpose": forms.Textarea(attrs={"rows": 2}),
            "data_policy": forms.Textarea(attrs={"rows": 2}),
            "access_policy": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, can_set_version: bool, **kwargs):
        super().__init__(*args, **kwargs)
        reason = self.fields.pop("reason")
        help_text = (
            _("Set by the automated deployment or a system admin.")
            if self.instance.tier == "PROD"
            else _("Set by the automated deployment.")
        )
        self.version_fields: dict[str, str] = {}
        for index, (product, version) in enumerate(self.instance.versions.items()):
            name = f"version_{index}"
            self.version_fields[name] = product
            self.fields[name] = forms.CharField(
                label=_("%(product)s version") % {"product": product},
                initial=version,
                max_length=64,
                validators=[validate_semver],
            )
        self.fields["new_product"] = forms.CharField(
            label=_("Add a product"),
            required=False,
            max_length=PRODUCT_MAX,
            help_text=_("As its releases name it."),
        )
        self.fields["new_version"] = forms.CharField(
            label=_("Its version"), required=False, max_length=64, validators=[validate_semver]
        )
        for name in [*self.version_fields, "new_product", "new_version"]:
            if not can_set_version:
                self.fields[name].disabled = True
                self.fields[name].help_text = help_text
        self.fields["reason"] = reason
        if self.instance.tier != "PROD":
            self.fields["equipment_writes"].disabled = True
            self.fields["equipment_writes"].help_text = _("DEV and UAT never write to equipment.")

    def clean(self):
        cleaned = super().clean()
        product, version = cleaned.get("new_product", "").strip(), cleaned.get("new_version", "")
        if bool(product) != bool(version) and "new_version" not in self.errors:
            self.add_error(
                "new_version" if product else "new_product", _("Give the product and its version.")
            )
        if product in self.version_fields.values():
            self.add_error(
                "new_product",
                _("%(product)s runs here already: change its version above.") % {"product": product},
            )
        return cleaned

    def changes(self) -> dict:
        result = {name: self.cleaned_data[name] for name in self.changed_data if name in self.Meta.fields}
        versions = {
            product: self.cleaned_data[name]
            for name, product in self.version_fields.items()
            if name in self.changed_data
        }
        if self.cleaned_data.get("new_product", "").strip():
            versions[self.cleaned_data["new_product"].strip()] = self.cleaned_data["new_version"]
        if versions:
            result["versions"] = versions
        return result


class DependencyForm(forms.Form):
    """Add a dependency to an environment's register, or change the one of that name."""

    name = forms.CharField(
        label=gettext_lazy("Dependency"),
        max_length=60,
        help_text=gettext_lazy("ERP, WMS, Supplier API, Identity, Historian, PLC gateway …"),
    )
    kind = forms.ChoiceField(label=gettext_lazy("How this tier has it"), choices=DependencyKind.choices)
    criticality = forms.ChoiceField(
        label=gettext_lazy("Criticality"), choices=Criticality.choices, initial=Criticality.MEDIUM
    )
    note = forms.CharField(label=gettext_lazy("Note"), max_length=200, required=False)
