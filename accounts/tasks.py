"""Periodic account work, run by beat (changecontrol/celery.py)."""

from __future__ import annotations

from celery import shared_task

from accounts import grants


@shared_task(name="accounts.tasks.expire_grants")
def expire_grants() -> int:
    return grants.expire_due()
