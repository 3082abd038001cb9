"""The role groups exist after every migrate (and after a test flush): one group per role,
holding that role's global permission."""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import translation

from core.roles import Role


def ensure_role_groups(**kwargs) -> dict[Role, Group]:
    from environments.models import Site

    site_ct = ContentType.objects.get_for_model(Site)
    groups = {}
    # Group and permission names are data, looked up by name: in English, whoever runs this.
    with translation.override(None):
        for role in Role:
            permission, _ = Permission.objects.get_or_create(
                content_type=site_ct,
                codename=role.codename,
                defaults={"name": f"Holds the role {role.label} at this site"},
            )
            group, _ = Group.objects.get_or_create(name=str(role.label))
            group.permissions.add(permission)
            groups[role] = group
    return groups
