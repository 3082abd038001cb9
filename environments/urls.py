from django.urls import path

from environments import views

app_name = "environments"
urlpatterns = [
    path("", views.board, name="board"),
    path("<str:code>/<str:tier>/", views.detail, name="detail"),
    path("<str:code>/<str:tier>/edit/", views.edit, name="edit"),
]
