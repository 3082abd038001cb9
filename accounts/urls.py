from django.urls import path

from accounts import language, mfa_views, views

urlpatterns = [
    path("language/", language.language_page, name="language"),
    path("tokens/", views.tokens_page, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="token-revoke"),
    path("mfa/", mfa_views.manage, name="mfa_manage"),
    path("mfa/verify/", mfa_views.verify, name="mfa_verify"),
    path("mfa/setup/", mfa_views.setup, name="mfa_setup"),
    path("mfa/recovery-codes/", mfa_views.recovery_codes, name="mfa_recovery_codes"),
    path("mfa/recovery-codes/regenerate/", mfa_views.regenerate, name="mfa_regenerate"),
]
