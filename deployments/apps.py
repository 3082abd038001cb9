from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        # Register the "Deployment window", "PROD pipeline complete", "Staging gaps accepted" and
        # computed-evidence gates in the one readiness checklist (C5).
        from deployments import checks, fidelity, promotion, readiness, scheduling  # noqa: F401
