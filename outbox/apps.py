from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = gettext_lazy("Mail outbox")
