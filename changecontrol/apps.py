from django.apps import AppConfig


class ChangeControlConfig(AppConfig):
    name = "changecontrol"
    verbose_name = "Plant Change Control"

    def ready(self) -> None:
        from changecontrol import checks  # noqa: F401  (registers the deployment checks)
