"""Beat delivers due mail every MAIL_DELIVER_SECONDS; queue() also nudges it right after commit."""

from celery import shared_task

from outbox import services


@shared_task(name="outbox.tasks.deliver")
def deliver() -> dict[str, int]:
    return services.deliver()
