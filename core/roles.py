"""The plant's roles. A role held through its group applies at every site; a role granted as a
django-guardian object permission on a Site applies at that site only."""

from django.db import models


class Role(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    KEY_USER = "key_user", "Key user"
    IT_MANAGER = "it_manager", "IT Manager"
    OPERATIONS_MANAGER = "operations_manager", "Operations Manager"
    CIO = "cio", "CIO"
    PLANT_DIRECTOR = "plant_director", "Plant Director"
    RELEASE_MANAGER = "release_manager", "Release manager"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Admin"

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


SITE_ROLE_PERMISSIONS = [(role.codename, f"Holds the role {role.label} at this site") for role in Role]
