"""The approvals gate, registered in the one readiness checklist (C5)."""

from django.utils.translation import gettext_noop

from releases.gates import Gate, gate

NAME = gettext_noop("Approvals complete")  # the gate's name: a key, translated where shown


@gate(NAME, applies_from=frozenset({"schedule", "deploy", "review"}))
def approvals_complete(rfc) -> Gate:
    from approvals.services import approvals_complete as check

    passed, reason = check(rfc)
    return Gate(NAME, passed, reason)
