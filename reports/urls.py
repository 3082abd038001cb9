from django.urls import path

from reports import cab_views, calendar_views, evidence_views, feeds

# Under an RFC's address, composed into the RFC pages' namespace.
rfc_patterns = [
    path("cab/", cab_views.cab_page, name="cab"),
    path("<uuid:uuid>/evidence-pack.pdf", evidence_views.evidence_pack_pdf, name="evidence_pack_pdf"),
    path("<uuid:uuid>/evidence-pack.json", evidence_views.evidence_pack_json, name="evidence_pack_json"),
]

# The change calendar, composed into the "environments" namespace by changecontrol/urls.py before
# the environment pages ("<code>/<tier>/" would swallow "calendar/BER/").
calendar_patterns = [
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    path("calendar/feed/", feeds.feed_page, name="calendar_feed"),
    path("calendar/<str:code>.ics", feeds.site_feed, name="calendar_ics"),
    path("calendar/<str:code>/", calendar_views.calendar_page, name="calendar_site"),
]
