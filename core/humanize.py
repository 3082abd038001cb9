"""Times as a person says them: "just now", "3 hours ago", "yesterday", "12 days ago"."""

from __future__ import annotations

from datetime import timedelta


def ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    if seconds < 86400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    days = seconds // 86400
    return "yesterday" if days == 1 else f"{days} days ago"
