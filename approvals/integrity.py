"""The signatures' integrity check (FAULTS 10): a signed RFC changed behind the portal's back.

Every edit made through the portal voids the signatures over other content (`void_stale_signatures`),
so a live signature always covers the RFC as it is now. A change written straight into the database
(`UPDATE releases_rfc SET title = …` as the database owner) voids nothing: the approvals gate then
refuses to deploy, but nobody is told. This check recomputes, for every live signature:

* `content`: the hash of what the RFC says now against the hash the signer signed — a mismatch names
  the parts that differ (e.g. `fields.title`), read from the content kept with the signature;
* `signature`: the hash of the content kept in the signature row against the row's own hash — a
  mismatch means the signature row itself was edited.

`verify_signatures()` runs nightly from beat (and `manage.py verify_signatures` on demand): each
mismatch is an incident — an audit event on the RFC, an error in the log and one urgent mail to the
RFC's sites' admins and auditors (once per mismatch: the same finding is not mailed every night).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from approvals.models import Signature
from approvals.services import hash_content, holders, signed_content
from audit.models import AuditEvent
from audit.services import record
from core import clock
from core.links import absolute_url
from core.roles import Role
from outbox import services as outbox
from releases.models import Rfc

logger = logging.getLogger("approvals.integrity")
TAMPERED = "approvals.signature.tampered"
VERIFIED = "approvals.signatures.verified"


@dataclass(frozen=True)
class Mismatch:
    rfc_id: int
    rfc_number: str
    signature_id: int
    kind: str  # "content" (the RFC changed) or "signature" (the signature row changed)
    signed_hash: str
    found_hash: str
    parts: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "signature":
            return (
                f"{self.rfc_number}: signature #{self.signature_id}'s stored content no longer matches "
                f"its hash {self.signed_hash[:12]}… (the signature row was edited)"
            )
        changed = ", ".join(self.parts) or "its content"
        return (
            f"{self.rfc_number}: signature #{self.signature_id} covers {self.signed_hash[:12]}…, the RFC "
            f"now hashes to {self.found_hash[:12]}… (changed outside the portal: {changed})"
        )

    def as_dict(self) -> dict:
        return {
            "signature": self.signature_id,
            "kind": self.kind,
            "signed_hash": self.signed_hash,
            "found_hash": self.found_hash,
            "parts": list(self.parts),
        }


def _differences(signed, now, path: str = "") -> list[str]:
    """The dotted paths where two contents differ (lists compared item by item)."""
    if isinstance(signed, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(signed) | set(now), key=str):
            found += _differences(signed.get(key), now.get(key), f"{path}.{key}" if path else str(key))
        return found
    if isinstance(signed, list) and isinstance(now, list) and len(signed) == len(now):
        found = []
        for index, (a, b) in enumerate(zip(signed, now, strict=True)):
            found += _differences(a, b, f"{path}[{index}]")
        return found
    return [] if signed == now else [path or "content"]


def check(rfcs=None) -> tuple[int, list[Mismatch]]:
    """(live signatures checked, mismatches) over `rfcs` (a queryset; default every RFC)."""
    signatures = Signature.objects.filter(voided_at__isnull=True).order_by("rfc_id", "pk")
    if rfcs is not None:
        signatures = signatures.filter(rfc__in=rfcs)
    checked, found = 0, []
    current_rfc, current = None, None
    for signature in signatures.select_related("rfc").iterator(chunk_size=500):
        checked += 1
        rfc = signature.rfc
        if hash_content(signature.content or {}) != signature.content_hash:
            found.append(
                Mismatch(
                    rfc.pk,
                    rfc.number,
                    signature.pk,
                    "signature",
                    signature.content_hash,
                    hash_content(signature.content or {}),
                )
            )
            continue
        if current_rfc != rfc.pk:
            current_rfc, current = rfc.pk, signed_content(rfc)
        now = hash_content(current)
        if now != signature.content_hash:
            parts = tuple(_differences(signature.content or {}, current))
            found.append(
                Mismatch(rfc.pk, rfc.number, signature.pk, "content", signature.content_hash, now, parts)
            )
    return checked, found


def _already_reported(mismatch: Mismatch) -> bool:
    return AuditEvent.objects.filter(
        action=TAMPERED,
        object_type="releases.rfc",
        after__signature=mismatch.signature_id,
        after__found_hash=mismatch.found_hash,
    ).exists()


def _recipients(rfc: Rfc) -> list[str]:
    people = set()
    for impact in rfc.impacts.select_related("site"):
        for role in (Role.ADMIN, Role.AUDITOR):
            people |= {user.email for user in holders(role, impact.site) if user.email}
    return sorted(people)


def _raise_incident(mismatch: Mismatch) -> None:
    from django.urls import reverse

    rfc = Rfc.objects.get(pk=mismatch.rfc_id)
    with transaction.atomic():
        record(
            TAMPERED,
            rfc,
            actor_name="system",
            after=mismatch.as_dict(),
            reason=mismatch.describe(),
        )
        people = _recipients(rfc)
        if people:
            with translation.override(None):
                body = (
                    _(
                        "URGENT: a signed RFC no longer matches what its approver signed. It was changed "
                        "outside the portal; its deployments are refused until it is reviewed."
                    )
                    + f"\n\n{mismatch.describe()}\n\n"
                    + _("RFC: %(url)s") % {"url": absolute_url(reverse("releases:detail", args=[rfc.uuid]))}
                    + "\n"
                )
                subject = _("[URGENT] Signed RFC changed outside the portal: %(rfc)s") % {"rfc": rfc.number}
            outbox.urgent(subject, body, people, about=rfc, kind="approvals.integrity")
    logger.error("signature integrity: %s", mismatch.describe())


def verify_signatures(rfcs=None) -> dict:
    """The nightly check: every live signature against its RFC; each new mismatch is an incident."""
    checked, mismatches = check(rfcs)
    new = [mismatch for mismatch in mismatches if not _already_reported(mismatch)]
    for mismatch in new:
        _raise_incident(mismatch)
    result = {
        "checked": checked,
        "mismatches": len(mismatches),
        "new": len(new),
        "at": clock.now().isoformat(),
    }
    record(
        VERIFIED,
        actor_name="system",
        object_type="approvals.signature",
        after={key: result[key] for key in ("checked", "mismatches", "new")},
    )
    logger.log(logging.ERROR if mismatches else logging.INFO, "signature integrity: %s", result)
    return {**result, "problems": [mismatch.describe() for mismatch in mismatches]}
