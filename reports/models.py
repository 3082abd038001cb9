from django.conf import settings
from django.db import models

from core import clock


class TraceabilityRun(models.Model):
    """A CI run's test results, imported from its JUnit XML reports (`manage.py traceability --save`),
    from which the traceability matrix is drawn (reports/traceability.py)."""

    imported_at = models.DateTimeField(default=clock.now)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    commit = models.CharField(max_length=40, blank=True)
    portal_version = models.CharField(max_length=20, blank=True)
    suites = models.JSONField(default=list)
    cases = models.JSONField(default=list, help_text='[{"test", "suite", "outcome", "reqs"}]')

    class Meta:
        ordering = ["-imported_at", "-pk"]

    def __str__(self) -> str:
        return (
            f"tests of {self.commit[:12] or 'an unknown commit'} imported {self.imported_at:%Y-%m-%d %H:%M}"
        )
