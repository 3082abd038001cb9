"""The RFC's states. Its transitions, who may take them and their effects are declared in
workflow/transitions.py; `workflow.services.transition()` is the only code that changes `Rfc.state`.
"""

from __future__ import annotations

from django.db import models


class RfcState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_APPROVAL = "in_approval", "In approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    DEPLOYING = "deploying", "Deploying"
    DEPLOYED = "deployed", "Deployed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


S = RfcState
# Not yet deploying: what an RFC may still be cancelled from.
BEFORE_DEPLOYMENT = frozenset({S.DRAFT, S.SUBMITTED, S.IN_APPROVAL, S.APPROVED, S.SCHEDULED})

EDITABLE_STATES = frozenset({S.DRAFT})
# Not finished: what "open" means in the RFC list's filter and on the home page.
OPEN_STATES = BEFORE_DEPLOYMENT | {S.DEPLOYING}
