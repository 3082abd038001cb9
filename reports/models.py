from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

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


class PeriodicReview(models.Model):
    """The periodic evaluation of the portal as a computerised system (Annex 11 §11): the figures,
    incidents, deviations, access, audit chain, configuration changes and follow-ups of a period,
    frozen at generation (content and its SHA-256), then signed by the reviewer like an approval."""

    since = models.DateField()
    until = models.DateField()
    sites = models.JSONField(default=list, help_text=_("Site codes the review covers."))
    content = models.JSONField(editable=False)
    content_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    printed_name = models.CharField(max_length=150, blank=True)
    meaning = models.CharField(max_length=200, blank=True)
    conclusion = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"periodic review {self.since:%Y-%m-%d} – {self.until:%Y-%m-%d}"

    @property
    def signed(self) -> bool:
        return self.signed_at is not None
