"""Site-scoped roles granted or revoked on a site's "Object permissions" page (django-guardian) are
configuration changes too (Annex 11 §10): each lands in the trail with who, whom, which role, where."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from guardian.models import GroupObjectPermission, UserObjectPermission

from audit.services import record


def _describe(row) -> dict:
    holder = row.user.get_username() if hasattr(row, "user") else f"group {row.group.name}"
    return {
        "holder": holder,
        "permission": row.permission.codename,
        "object": f"{row.content_type.model} {row.object_pk}",
    }


def _reason(default: str) -> str:
    """The reason typed on the object-permissions page (environments/admin.py), else what happened."""
    from core.context import current_context

    context = current_context()
    request = getattr(context, "request", None)
    typed = (
        request.POST.get("audit_reason", "").strip()
        if request is not None and request.method == "POST"
        else ""
    )
    return typed or default


def _site_code(row) -> str:
    if row.content_type.model != "site":
        return ""
    from environments.models import Site

    return Site.objects.filter(pk=row.object_pk).values_list("code", flat=True).first() or ""


@receiver(post_save, sender=UserObjectPermission, dispatch_uid="audit-uop-saved")
@receiver(post_save, sender=GroupObjectPermission, dispatch_uid="audit-gop-saved")
def granted(sender, instance, created, raw=False, **kwargs):  # pragma: no mutate
    if created and not raw:
        record(
            "accounts.object_permission.granted",
            object_type="guardian.objectpermission",
            object_id=str(instance.pk),
            site_code=_site_code(instance),
            after=_describe(instance),
            reason=_reason("granted in administration"),
        )


@receiver(post_delete, sender=UserObjectPermission, dispatch_uid="audit-uop-deleted")
@receiver(post_delete, sender=GroupObjectPermission, dispatch_uid="audit-gop-deleted")
def revoked(sender, instance, **kwargs):
    record(
        "accounts.object_permission.revoked",
        object_type="guardian.objectpermission",
        object_id=str(instance.pk),
        site_code=_site_code(instance),
        before=_describe(instance),
        reason=_reason("revoked in administration"),
    )
