from django.urls import path

from workflow import approval_views as views

app_name = "approvals"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("<int:pk>/", views.decide, name="decide"),
    path("link/<str:token>/", views.link, name="link"),
    path("absence/", views.absences, name="absences"),
    path("absence/<int:pk>/cancel/", views.cancel_absence, name="cancel_absence"),
]
