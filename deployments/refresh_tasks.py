"""Computed-evidence jobs: rows are the truth, tasks only run them (safe to run twice)."""

from celery import shared_task

from plant import evidence


@shared_task(name="deployments.refresh_tasks.run_refresh", ignore_result=True)
def run_refresh(run_id: int) -> str:
    return evidence.run_refresh(run_id)


@shared_task(name="deployments.refresh_tasks.refresh_due", ignore_result=True)
def refresh_due() -> list[int]:
    return evidence.refresh_due()


@shared_task(name="deployments.refresh_tasks.sweep_evidence", ignore_result=True)
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
