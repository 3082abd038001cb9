from django import forms

from environments.models import Environment


class EnvironmentForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit trail with the change.",
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
            "active_version",
        ]
        widgets = {
            "purpose": forms.Textarea(attrs={"rows": 2}),
            "data_policy": forms.Textarea(attrs={"rows": 2}),
            "access_policy": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, can_set_version: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_set_version:
            self.fields["active_version"].disabled = True
            self.fields["active_version"].help_text = "Set by the automated deployment" + (
                " or a system admin." if self.instance.tier == "PROD" else "."
            )
        if self.instance.tier != "PROD":
            self.fields["equipment_writes"].disabled = True
            self.fields["equipment_writes"].help_text = "DEV and UAT never write to equipment (E5)."

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.changed_data if name != "reason"}
