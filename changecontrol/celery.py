import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")

app = Celery("changecontrol")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    # Beat runs in UTC (CELERY.md item 6: crontab and DST); the audit chain is checked nightly.
    sender.add_periodic_task(
        crontab(hour=settings.AUDIT_VERIFY_HOUR_UTC, minute=0),
        sender.signature("audit.tasks.verify_chain"),
        name="audit: verify the hash chain",
    )
    # Then every live signature against the RFC it signed: a change made outside the portal is an
    # incident (approvals/integrity.py).
    sender.add_periodic_task(
        crontab(hour=settings.AUDIT_VERIFY_HOUR_UTC, minute=15),
        sender.signature("approvals.tasks.verify_signatures"),
        name="approvals: check signed RFCs against their signatures",
    )
    # Approval requests, reminders and escalations come from database rows.
    sender.add_periodic_task(
        float(settings.APPROVAL_SWEEP_SECONDS),
        sender.signature("approvals.tasks.sweep"),
        name="approvals: send due requests, reminders and escalations",
    )
    # Reminders before a PROD window and gates newly failing on scheduled RFCs (notify/sweeps.py).
    sender.add_periodic_task(
        float(settings.NOTIFY_SWEEP_SECONDS),
        sender.signature("notify.tasks.sweep"),
        name="notify: window reminders and newly failing gates",
    )
    # Webhook posts come from their rows too; failed ones come due again after their backoff.
    sender.add_periodic_task(
        float(settings.WEBHOOK_DELIVER_SECONDS),
        sender.signature("hooks.tasks.deliver"),
        name="hooks: post due webhook deliveries",
    )
    # Mail is delivered from the outbox's rows; failed tries come due again after their backoff.
    sender.add_periodic_task(
        float(settings.MAIL_DELIVER_SECONDS),
        sender.signature("outbox.tasks.deliver"),
        name="outbox: deliver due mail",
    )
    # Due deployments are claimed from the database every few seconds: no ETAs.
    sender.add_periodic_task(
        float(settings.DEPLOYMENT_DISPATCH_SECONDS),
        sender.signature("deployments.tasks.dispatch_deployments"),
        name="releases: dispatch due deployments",
    )
    # A rollback past its budget (X4) alerts even when its worker is stuck inside a step.
    sender.add_periodic_task(
        60.0,
        sender.signature("deployments.tasks.overdue_rollbacks"),
        name="releases: alert rollbacks past their budget",
    )
    # Computed evidence: queued refreshes and checks are swept up; monthly UAT refreshes.
    sender.add_periodic_task(
        30.0,
        sender.signature("deployments.tasks.sweep_evidence"),
        name="environments: run queued refreshes and checks",
    )
    # Business signals of PROD read as readiness (plant/signals.py): the gate before PROD judges them.
    sender.add_periodic_task(
        float(settings.SIGNALS_READ_SECONDS),
        sender.signature("deployments.tasks.read_signals"),
        name="environments: read PROD business signals",
    )
    sender.add_periodic_task(
        crontab(hour=2, minute=30),
        sender.signature("deployments.tasks.refresh_due"),
        name="environments: scheduled UAT refreshes",
    )
    # Time-bound role grants: an expired one already counts for nothing; this removes and audits it.
    sender.add_periodic_task(
        60.0,
        sender.signature("accounts.tasks.expire_grants"),
        name="accounts: remove expired time-bound role grants",
    )


@beat_init.connect
def _start_dispatcher(sender=None, **kwargs) -> None:
    """Beat's process also runs the deployment dispatcher (deployments/dispatcher.py): due deployments
    start within a second of their booked time instead of at beat's next tick. Two beats run two
    dispatchers; rows are claimed with skip_locked, so a deployment still starts once."""
    from django.conf import settings

    if settings.DEPLOYMENT_DISPATCHER:
        from deployments import dispatcher

        dispatcher.start_in_thread()
