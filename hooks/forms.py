from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy

from hooks.models import ChatEndpoint, Webhook
from notify.events import KINDS


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", label=gettext_lazy("Address (https://…)"))
    events = forms.MultipleChoiceField(
        choices=[(key, kind.label) for key, kind in KINDS.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Events to post"),
        help_text=gettext_lazy("None ticked: every event of this site."),
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "format", "active"]
        labels = {"format": gettext_lazy("Format"), "active": gettext_lazy("Active")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["events"].initial = self.instance.events

    def save(self, commit: bool = True):
        self.instance.events = self.cleaned_data["events"]
        return super().save(commit)


class ChatEndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500, assume_scheme="https", label=gettext_lazy("Your chat webhook address (https://…)")
    )

    class Meta:
        model = ChatEndpoint
        fields = ["url", "format"]
        labels = {"format": gettext_lazy("Chat")}
