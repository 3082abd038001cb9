"""The one place that reads "now" (DESIGN principle 5), so tests can move the clock."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
