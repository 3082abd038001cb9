from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import gates  # noqa: F401 - registers the "Approvals complete" gate
        from approvals.services import ensure_default_policies

        # After every migrate and every test flush, like the role groups.
        post_migrate.connect(ensure_default_policies, sender=self, dispatch_uid="approvals-default-policies")
