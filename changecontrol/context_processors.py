from django.conf import settings

from changecontrol import access


def portal(request):
    user = getattr(request, "user", None)
    return {
        "portal_version": settings.PORTAL_VERSION,
        "nav": access.navigation(user) if user is not None and user.is_authenticated else [],
        "user_roles": access.role_labels(user) if user is not None and user.is_authenticated else [],
    }
