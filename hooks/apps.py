from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "hooks"
    verbose_name = "Webhooks and chat"

    def ready(self) -> None:
        from hooks import sinks
        from notify import events

        events.sink(sinks.site_webhooks)
        events.CHANNELS["chat"] = sinks.personal_chat
