from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class DiscussionConfig(AppConfig):
    name = "discussion"
    verbose_name = gettext_lazy("Comments")
