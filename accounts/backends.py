"""The local password backend, optionally limited to break-glass accounts.

LOCAL_LOGIN=all (default): every local account signs in with its password, as before.
LOCAL_LOGIN=breakglass: only staff or superuser accounts (the break-glass admins) do; everyone else
signs in through the directory. Directory users never have a usable local password either way.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


class LocalPasswordBackend(ModelBackend):
    def user_can_authenticate(self, user):
        if not super().user_can_authenticate(user):
            return False
        if getattr(settings, "LOCAL_LOGIN", "all") == "breakglass":
            return bool(user.is_staff or user.is_superuser)
        return True
