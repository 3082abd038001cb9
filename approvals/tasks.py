"""Beat-driven approval mail: short tasks over database rows, safe to run twice."""

from celery import shared_task

from approvals import mail


@shared_task(name="approvals.tasks.send_notifications")
def send_notifications() -> int:
    return mail.send_notifications()


@shared_task(name="approvals.tasks.sweep")
def sweep() -> dict[str, int]:
    return mail.sweep()


@shared_task(name="approvals.tasks.verify_signatures", acks_late=True)
def verify_signatures() -> dict:
    """Nightly from beat: every live signature against its RFC (approvals/integrity.py)."""
    from approvals import integrity

    return integrity.verify_signatures()
