from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases and RFCs"

    def ready(self) -> None:
        # Registers the "Deployment window" gate in the one readiness checklist (C5).
        from releases import checks, scheduling  # noqa: F401 - computed-evidence gates (issue 7)
