from django.urls import path

from notify import views

app_name = "notify"

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    *[
        path(f"rfcs/<uuid:uuid>/{action}/", views.follow, {"action": action}, name=action)
        for action in views.ACTIONS
    ],
]
