"""A real worker takes work from the broker the settings name (file system or Redis)."""

import pytest

from audit.models import AuditEvent
from audit.services import record
from tests.workers import celery_worker, wait_until


@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_nightly_verification_through_the_broker():
    from audit.tasks import verify_chain

    record("tests.thing.created", actor_name="alice")
    with celery_worker() as worker:
        verify_chain.delay()
        try:
            event = wait_until(lambda: AuditEvent.objects.filter(action="audit.chain.verified").first())
        except AssertionError:
            raise AssertionError("worker log:\n" + "".join(worker.log[-40:])) from None
    assert event.after["ok"] is True and event.after["count"] == 1
    assert any("audit.tasks.verify_chain" in line for line in worker.log)
