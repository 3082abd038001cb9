from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = gettext_lazy("Webhooks and chat")

    def ready(self) -> None:
        from hooks import sinks
        from notify import events

        events.sink(sinks.site_webhooks)
        events.CHANNELS["chat"] = sinks.personal_chat
