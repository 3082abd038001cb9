from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EnvironmentsConfig(AppConfig):
    name = "environments"
    verbose_name = "Sites and environments"

    def ready(self) -> None:
        from environments.roles_setup import ensure_role_groups

        # post_migrate is Django's only hook that also runs after a test database flush.
        post_migrate.connect(
            lambda sender, **kw: ensure_role_groups() if sender is self else None,
            dispatch_uid="environments-role-groups", weak=False,
        )
