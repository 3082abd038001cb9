"""Deployment tasks: a short periodic dispatcher and the per-deployment runner.

Both are safe to run twice: the dispatcher claims rows with skip_locked, the runner takes a lease
and answers finished steps from the journal (CELERY.md 1–5). No ETA is ever set.
"""

from celery import shared_task
from django.db import close_old_connections

from deployments import engine


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


@shared_task(name="deployments.tasks.run_check", ignore_result=True)
def run_check(run_id: int) -> str:
    from deployments import checks

    return checks.run_check(run_id)
