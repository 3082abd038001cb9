import logging

from celery import shared_task

from audit.services import record, verify

logger = logging.getLogger(__name__)


@shared_task(name="audit.tasks.verify_chain", acks_late=True)
def verify_chain() -> dict:
    """Nightly from beat: recompute the chain and write the result to the trail and the log."""
    result = verify()
    logger.log(
        logging.INFO if result.ok else logging.ERROR,
        "audit chain verified: %s %s",
        result.as_dict(),
        result.problem,
    )
    record(
        "audit.chain.verified",
        actor_name="system",
        object_type="audit.chain",
        after={**result.as_dict(), "problem": result.problem},
    )
    if result.ok:
        from audit.trail import publish_head

        publish_head()  # only a verified head is published
    return result.as_dict()
