from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy


class EnvironmentsConfig(AppConfig):
    name = "environments"
    verbose_name = gettext_lazy("Sites and environments")

    def ready(self) -> None:
        from environments import permission_log  # noqa: F401  (audits role grants: guardian and auth signals)
        from environments.roles_setup import ensure_role_groups

        # post_migrate is Django's only hook that also runs after a test database flush.
        post_migrate.connect(
            lambda sender, **kw: ensure_role_groups() if sender is self else None,
            dispatch_uid="environments-role-groups",
            weak=False,
        )
        post_save.connect(
            _new_site_calendar, sender="environments.Site", dispatch_uid="environments-site-calendar"
        )


def _new_site_calendar(sender, instance, created, raw=False, **kwargs) -> None:
    """Every new site, however it is created (admin, API, demo, tests), gets the default calendar."""
    if created and not raw:
        from environments.windows import ensure_default_calendar

        ensure_default_calendar(instance)
