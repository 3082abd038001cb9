from django.urls import path

from deployments import calendar_views, feeds
from environments import views

app_name = "environments"
urlpatterns = [
    path("", views.board, name="board"),
    # The change calendar (issue 5 item 7); before "<code>/<tier>/", which would swallow "calendar/BER/".
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    path("calendar/feed/", feeds.feed_page, name="calendar_feed"),
    path("calendar/<str:code>.ics", feeds.site_feed, name="calendar_ics"),
    path("calendar/<str:code>/", calendar_views.calendar_page, name="calendar_site"),
    path("<str:code>/<str:tier>/", views.detail, name="detail"),
    path("<str:code>/<str:tier>/edit/", views.edit, name="edit"),
    path("<str:code>/<str:tier>/refresh/", views.refresh, name="refresh"),
    path("<str:code>/<str:tier>/fingerprint/", views.fingerprint, name="fingerprint"),
]
