from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("mfa/", views.manage, name="mfa_manage"),
    path("mfa/verify/", views.verify, name="mfa_verify"),
    path("mfa/setup/", views.setup, name="mfa_setup"),
    path("mfa/recovery-codes/", views.recovery_codes, name="mfa_recovery_codes"),
    path("mfa/recovery-codes/regenerate/", views.regenerate, name="mfa_regenerate"),
]
