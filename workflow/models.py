"""The post-implementation review every change ends with (ITIL; Annex 11 §10)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from core import clock


class CloseCode(models.TextChoices):
    SUCCESSFUL = "successful", gettext_lazy("Successful")
    WITH_ISSUES = "with_issues", gettext_lazy("Successful with issues")
    ROLLED_BACK = "rolled_back", gettext_lazy("Rolled back")
    FAILED = "failed", gettext_lazy("Failed")


# The close code a review starts from, by how the RFC's PROD deployments ended.
SUGGESTED = {
    "deployed": CloseCode.SUCCESSFUL,
    "rolled_back": CloseCode.ROLLED_BACK,
    "failed": CloseCode.FAILED,
}


class Review(models.Model):
    """Opened when an RFC's PROD deployments end; the RFC closes (or is re-planned) only once it is
    complete. An RFC re-planned after a failure ends again later: one review per attempt."""

    rfc = models.ForeignKey("releases.Rfc", on_delete=models.PROTECT, related_name="reviews")
    opened_at = models.DateTimeField(default=clock.now)
    outcome = models.CharField(
        max_length=20, help_text=gettext_lazy("The RFC's state when the review opened.")
    )
    # The attempt it reviews: the RFC's deployments up to this id (a re-planned RFC's next attempt
    # is judged by its own deployments only).
    last_deployment_id = models.BigIntegerField(default=0)
    close_code = models.CharField(max_length=20, choices=CloseCode.choices, blank=True)
    what_happened = models.TextField(blank=True)
    follow_ups = models.TextField(blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["rfc", "-opened_at"], name="review_rfc_latest")]

    def __str__(self) -> str:
        return f"review of {self.rfc}"

    @property
    def done(self) -> bool:
        return self.completed_at is not None

    @property
    def suggested_code(self) -> str:
        return SUGGESTED.get(self.outcome, CloseCode.SUCCESSFUL)

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number


class SavedFilter(models.Model):
    """A named RFC list filter (the list's own parameters, as a query string) a user keeps for
    themselves or shares with everyone; the list and the API read it through the same FilterSet."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=1000)
    shared = models.BooleanField(
        default=False, help_text=gettext_lazy("Everyone sees it in their list of filters.")
    )
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="one_saved_filter_per_name")]

    def __str__(self) -> str:
        return self.name
