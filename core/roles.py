"""The plant's roles. A role held through its group applies at every site; a role granted as a
django-guardian object permission on a Site applies at that site only."""

from django.db import models
from django.utils import translation
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    DEVELOPER = "developer", _("Developer")
    KEY_USER = "key_user", _("Key user")
    IT_MANAGER = "it_manager", _("IT Manager")
    OPERATIONS_MANAGER = "operations_manager", _("Operations Manager")
    CIO = "cio", _("CIO")
    PLANT_DIRECTOR = "plant_director", _("Plant Director")
    RELEASE_MANAGER = "release_manager", _("Release manager")
    AUDITOR = "auditor", _("Auditor")
    ADMIN = "admin", _("Admin")

    @property
    def codename(self) -> str:
        return f"role_{self.value}"

    @property
    def perm(self) -> str:
        return f"environments.role_{self.value}"

    @classmethod
    def from_codename(cls, codename: str) -> "Role | None":
        value = codename.removeprefix("role_")
        return cls(value) if codename.startswith("role_") and value in cls.values else None


def _permission_name(label) -> str:
    # A permission's name is data (stored, and in the migrations): English, whatever the language.
    with translation.override(None):
        return f"Holds the role {label} at this site"


# Lazy: the labels are translated lazily, and may only be read once the apps are ready.
SITE_ROLE_PERMISSIONS = [(role.codename, lazy(_permission_name, str)(role.label)) for role in Role]
