from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = gettext_lazy("RFC workflow")

    def ready(self) -> None:
        from deployments.states import follow_with
        from workflow.services import follow_deployment

        # The RFC follows its deployments: every Deployment move reports here (workflow/transitions.py).
        follow_with(follow_deployment)
