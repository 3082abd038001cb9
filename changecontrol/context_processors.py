from django.conf import settings

from environments import access


def current_key(nav: list[dict], path: str) -> str:
    """The navigation item a page belongs to: the longest item URL the path starts with."""
    matches = [
        item for item in nav if path == item["url"] or (item["url"] != "/" and path.startswith(item["url"]))
    ]
    return max(matches, key=lambda item: len(item["url"]))["key"] if matches else ""


def portal(request):
    user = getattr(request, "user", None)
    nav = access.navigation(user) if user is not None and user.is_authenticated else []
    return {
        "portal_version": settings.PORTAL_VERSION,
        "nav": nav,
        "nav_current": current_key(nav, request.path),
        "user_roles": access.role_labels(user) if user is not None and user.is_authenticated else [],
    }
