"""Deployment tasks: a short periodic dispatcher and the per-deployment runner.

Both are safe to run twice: the dispatcher claims rows with skip_locked, the runner takes a lease
and answers finished steps from the journal (CELERY.md 1–5). No ETA is ever set.
"""

from celery import shared_task
from django.db import close_old_connections

from deployments import engine
from plant import evidence


@shared_task(name="deployments.tasks.dispatch_deployments", ignore_result=True)
def dispatch_deployments() -> list[int]:
    return engine.dispatch()


@shared_task(name="deployments.tasks.run_deployment", acks_late=True, ignore_result=True)
def run_deployment(deployment_id: int) -> str:
    close_old_connections()
    try:
        return engine.run(deployment_id)
    finally:
        close_old_connections()


@shared_task(name="deployments.tasks.overdue_rollbacks", ignore_result=True)
def overdue_rollbacks() -> list[int]:
    """X4: an urgent alert for every rollback past its budget (once each, under any number of beats)."""
    return engine.overdue_rollbacks()


@shared_task(name="deployments.tasks.run_check", ignore_result=True)
def run_check(run_id: int) -> str:
    from deployments import checks

    return checks.run_check(run_id)


# --- Computed evidence: rows are the truth, tasks only run them (safe to run twice) ---------------


@shared_task(name="deployments.tasks.run_refresh", ignore_result=True)
def run_refresh(run_id: int) -> str:
    return evidence.run_refresh(run_id)


@shared_task(name="deployments.tasks.refresh_due", ignore_result=True)
def refresh_due() -> list[int]:
    return evidence.refresh_due()


@shared_task(name="deployments.tasks.sweep_evidence", ignore_result=True)
def sweep_evidence() -> dict:
    """Run queued refreshes and checks whose nudge was lost (a broker outage)."""
    from datetime import timedelta

    from core import clock
    from deployments import checks
    from deployments.models import CheckRun
    from environments.models import RefreshRun, RunState

    stale = clock.now() - timedelta(seconds=30)
    refreshed = [
        evidence.run_refresh(pk)
        for pk in RefreshRun.objects.filter(state=RunState.QUEUED, created_at__lt=stale).values_list(
            "pk", flat=True
        )[:5]
    ]
    checked = [
        checks.run_check(pk)
        for pk in CheckRun.objects.filter(state=RunState.QUEUED, created_at__lt=stale).values_list(
            "pk", flat=True
        )[:5]
    ]
    return {"refreshes": len(refreshed), "checks": len(checked)}


@shared_task(name="deployments.tasks.read_signals", ignore_result=True)
def read_signals() -> int:
    """Read PROD's readiness signals (plant/signals.py) for the gate before PROD."""
    from plant import signals

    return signals.read_due()


@shared_task(name="deployments.tasks.run_flag_change", ignore_result=True)
def run_flag_change(change_id: int) -> str:
    """Switch a feature flag and check it (deployments/flags.py)."""
    from deployments import flags

    return flags.run(change_id)
