"""Beat posts due webhook deliveries every WEBHOOK_DELIVER_SECONDS; queue() also nudges right after commit."""

from celery import shared_task

from hooks import delivery


@shared_task(name="hooks.tasks.deliver")
def deliver() -> dict[str, int]:
    return delivery.deliver()
