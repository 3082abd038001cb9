from django.urls import path

from deployments import calendar_views, feeds, views

# The change calendar, composed into the "environments" namespace by changecontrol/urls.py before
# the environment pages ("<code>/<tier>/" would swallow "calendar/BER/").
calendar_patterns = [
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    path("calendar/feed/", feeds.feed_page, name="calendar_feed"),
    path("calendar/<str:code>.ics", feeds.site_feed, name="calendar_ics"),
    path("calendar/<str:code>/", calendar_views.calendar_page, name="calendar_site"),
]

# Under an RFC's address, composed into the RFC pages' namespace.
rfc_patterns = [
    path("<uuid:uuid>/deploy/", views.deploy_now, name="deploy_now"),
    path("<uuid:uuid>/deployments/<uuid:deployment_uuid>/", views.deployment_detail, name="deployment"),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/rollback/",
        views.deployment_rollback,
        name="deployment_rollback",
    ),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/cancel/",
        views.deployment_cancel,
        name="deployment_cancel",
    ),
]
