from django.urls import path

from workflow import approval_views as views
from workflow import standard_views

app_name = "approvals"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("<int:pk>/", views.decide, name="decide"),
    path("link/<str:token>/", views.link, name="link"),
    path("absence/", views.absences, name="absences"),
    path("absence/<int:pk>/cancel/", views.cancel_absence, name="cancel_absence"),
    path("standard/", standard_views.template_list, name="standard_list"),
    path("standard/<uuid:uuid>/", standard_views.template_detail, name="standard"),
    path("standard/<uuid:uuid>/sign/", standard_views.template_sign, name="standard_sign"),
    path("standard/<uuid:uuid>/suspend/", standard_views.template_suspend, name="standard_suspend"),
]
