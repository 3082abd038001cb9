"""Beat runs the notification sweeps (window reminders, newly failing gates)."""

from celery import shared_task

from notify import sweeps


@shared_task(name="notify.tasks.sweep")
def sweep() -> dict[str, int]:
    return sweeps.sweep()
