from django.urls import path

from hooks import views

app_name = "hooks"

urlpatterns = [
    path("sites/<str:code>/", views.site_webhooks, name="site"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/test/", views.send_test, name="test"),
    path("chat/", views.chat, name="chat"),
]
