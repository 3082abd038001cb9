"""The RFC's states. Its transitions, who may take them and their effects are declared in
workflow/transitions.py; `workflow.services.transition()` is the only code that changes `Rfc.state`.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy


class RfcState(models.TextChoices):
    DRAFT = "draft", gettext_lazy("Draft")
    SUBMITTED = "submitted", gettext_lazy("Submitted")
    IN_APPROVAL = "in_approval", gettext_lazy("In approval")
    APPROVED = "approved", gettext_lazy("Approved")
    SCHEDULED = "scheduled", gettext_lazy("Scheduled")
    DEPLOYING = "deploying", gettext_lazy("Deploying")
    DEPLOYED = "deployed", gettext_lazy("Deployed")
    ROLLED_BACK = "rolled_back", gettext_lazy("Rolled back")
    FAILED = "failed", gettext_lazy("Failed")
    CLOSED = "closed", gettext_lazy("Closed")
    REJECTED = "rejected", gettext_lazy("Rejected")
    CANCELLED = "cancelled", gettext_lazy("Cancelled")


S = RfcState
# Not yet deploying: what an RFC may still be cancelled from.
BEFORE_DEPLOYMENT = frozenset({S.DRAFT, S.SUBMITTED, S.IN_APPROVAL, S.APPROVED, S.SCHEDULED})

EDITABLE_STATES = frozenset({S.DRAFT})
# Not finished: what "open" means in the RFC list's filter and on the home page.
OPEN_STATES = BEFORE_DEPLOYMENT | {S.DEPLOYING}
# The PROD deployments have ended (deployed, rolled back or failed): the post-implementation review is
# (or becomes) open (workflow/reviews.py); the home page lists them to review, re-plan or close.
ENDED_STATES = frozenset({S.DEPLOYED, S.ROLLED_BACK, S.FAILED})
