"""The login page: the local/LDAP password form and, when OpenID Connect is configured, a
"Sign in with …" button."""

from django.contrib.auth import views as auth_views

from accounts import oidc
from accounts.forms import LoginForm


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = oidc.enabled()
        context["oidc_display_name"] = oidc.display_name()
        return context
