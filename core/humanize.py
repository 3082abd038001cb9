"""Times as a person says them: "just now", "3 hours ago", "yesterday", "12 days ago"."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext, ngettext


def ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return gettext("just now")
    if seconds < 3600:
        minutes = seconds // 60
        return ngettext("%(count)d minute ago", "%(count)d minutes ago", minutes) % {"count": minutes}
    if seconds < 86400:
        hours = seconds // 3600
        return ngettext("%(count)d hour ago", "%(count)d hours ago", hours) % {"count": hours}
    days = seconds // 86400
    if days == 1:
        return gettext("yesterday")
    return ngettext("%(count)d day ago", "%(count)d days ago", days) % {"count": days}
