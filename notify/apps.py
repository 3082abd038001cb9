from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = gettext_lazy("Notifications")

    def ready(self) -> None:
        from notify import people  # noqa: F401  (registers the people sink)
