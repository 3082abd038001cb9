from django.urls import path

from . import oidc

urlpatterns = [
    path("oidc/start/", oidc.StartView.as_view(), name="oidc-start"),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc-callback"),
]
