from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = gettext_lazy("Releases and RFCs")
