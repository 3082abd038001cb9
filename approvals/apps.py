from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = gettext_lazy("Approvals")

    def ready(self) -> None:
        from approvals import gates  # noqa: F401 - registers the "Approvals complete" gate
        from approvals.mail import on_mail_sent
        from outbox.signals import mail_sent

        # An approval is notified once a request mail for it was delivered (outbox), not queued.
        mail_sent.connect(on_mail_sent, dispatch_uid="approvals-notified-on-delivery")
        from approvals.services import ensure_default_policies

        # After every migrate and every test flush, like the role groups.
        post_migrate.connect(ensure_default_policies, sender=self, dispatch_uid="approvals-default-policies")
