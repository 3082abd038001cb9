"""URLs for bench/pages_bench.py only: the product's, and under /_bare/ the same rows each page shows,
read with plain queries and rendered with a minimal template (no base.html)."""

import pages_bare as bare
from django.urls import path

from changecontrol.urls import handler400, handler403, handler404, handler500  # noqa: F401
from changecontrol.urls import urlpatterns as product

urlpatterns = [
    path("_bare/home/", bare.home),
    path("_bare/rfcs/", bare.rfc_list),
    path("_bare/rfcs/<uuid:uuid>/", bare.rfc_page),
    path("_bare/rfcs/<uuid:uuid>/four-kinds/", bare.rfc_page_four_kinds),
    path("_bare/approvals/", bare.queue),
    path("_bare/calendar/", bare.calendar_month),
    path("_bare/audit/", bare.audit),
    path("_bare/api/rfcs/", bare.api_rfcs),
    *product,
]
