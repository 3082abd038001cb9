from django.urls import path

from plant import views

# Composed into the "environments" namespace by changecontrol/urls.py, after the calendar's paths.
urlpatterns = [
    path("", views.board, name="board"),
    path("<str:code>/<str:tier>/", views.detail, name="detail"),
    path("<str:code>/<str:tier>/edit/", views.edit, name="edit"),
    path("<str:code>/<str:tier>/refresh/", views.refresh, name="refresh"),
    path("<str:code>/<str:tier>/fingerprint/", views.fingerprint, name="fingerprint"),
    path("<str:code>/<str:tier>/read-signals/", views.read_signals, name="read_signals"),
    path("<str:code>/<str:tier>/dependencies/", views.dependency_save, name="dependency_save"),
    path(
        "<str:code>/<str:tier>/dependencies/<int:dependency_id>/remove/",
        views.dependency_remove,
        name="dependency_remove",
    ),
    path("<str:code>/<str:tier>/terminal-token/", views.terminal_token, name="terminal_token"),
]
