"""Downloading an RFC's evidence pack (PRODUCT.md C2) as PDF or JSON.

Whoever may see the RFC may download its pack; another site's RFC is a 404, exactly as on the
RFC page. Every download is audited with the SHA-256 of the bytes handed out, so a pack shown
to an inspector can later be matched to its generation event.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from audit.services import record
from releases.services import rfc_or_404
from reports import evidence_pack

CONTENT_TYPES = {"pdf": "application/pdf", "json": "application/json"}


def _pack(request, uuid, fmt: str) -> HttpResponse:
    """Build the pack, then record its generation.

    The bytes are computed first and the event recorded after, so a pack never lists its own
    generation event (it could not: the event carries the pack's hash). The next pack lists it.
    """
    rfc = rfc_or_404(request.user, uuid)
    data = evidence_pack.pack_data(rfc)
    body = evidence_pack.render_pdf(data) if fmt == "pdf" else evidence_pack.render_json(data)
    digest = hashlib.sha256(body).hexdigest()
    record(
        "reports.evidence_pack.generated", rfc, actor=request.user, after={"format": fmt, "sha256": digest}
    )
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{rfc.number}-evidence-pack.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = digest
    return response


@login_required
@require_GET
def evidence_pack_pdf(request, uuid):
    return _pack(request, uuid, "pdf")


@login_required
@require_GET
def evidence_pack_json(request, uuid):
    return _pack(request, uuid, "json")
