from django.urls import path

from reports import evidence_views

# Under an RFC's address, composed into the RFC pages' namespace.
rfc_patterns = [
    path("<uuid:uuid>/evidence-pack.pdf", evidence_views.evidence_pack_pdf, name="evidence_pack_pdf"),
    path("<uuid:uuid>/evidence-pack.json", evidence_views.evidence_pack_json, name="evidence_pack_json"),
]
