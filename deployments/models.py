"""Deployments: an RFC's release going to one environment, its journal of steps, and computed checks.

The tables keep their original names (they were created under `releases`), so databases from
v0.6.0 move here without copying a row.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy

from deployments.states import ACTIVE, DeploymentState
from environments.models import RunState
from releases.models import Release, Rfc


class Deployment(models.Model):
    """An RFC's release going to one environment at a planned time (W5)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.PROTECT, related_name="deployments"
    )
    scheduled_start = models.DateTimeField()
    scheduled_end = models.DateTimeField(
        help_text=gettext_lazy("Start + duration + smoke test + rollback budget: the slot it holds.")
    )
    duration_minutes = models.PositiveIntegerField()
    state = models.CharField(
        max_length=16, choices=DeploymentState.choices, default=DeploymentState.SCHEDULED
    )
    emergency = models.BooleanField(default=False)
    handover_override = models.BooleanField(
        default=False, help_text=gettext_lazy("Plant Director allowed a start in a handover.")
    )
    scheduled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    # The engine: a lease per deployment, the next time it needs a worker, what happened.
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text=gettext_lazy("Times a worker took the lease.")
    )
    next_action_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("When a worker is next due (the smoke delay is a row, not a sleeping task)."),
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_ends_at = models.DateTimeField(
        null=True, blank=True, help_text=gettext_lazy("No apply step starts after this.")
    )
    outcome = models.TextField(blank=True)
    rollback_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Promotion (X5, E1): the artifact this deployment carries, fixed when it is booked; the next
    # tier accepts only an artifact that succeeded here.
    artifact_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    # What stood when the worker started: the gates (C5) and the environment's fingerprint (E8);
    # and after it ended, the fingerprint of what then ran.
    gates_at_start = models.JSONField(default=list, blank=True, editable=False)
    fingerprint_before = models.JSONField(default=dict, blank=True, editable=False)
    fingerprint_after = models.JSONField(default=dict, blank=True, editable=False)
    # The rollback (R3, X4): when it began, when the overdue alert went out, and what it cost.
    rollback_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    rollback_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    rpo = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text=gettext_lazy(
            "Production data a rollback discarded: how, the time span and the tables touched."
        ),
    )

    class Meta:
        db_table = "releases_deployment"
        ordering = ["scheduled_start"]
        indexes = [
            models.Index(fields=["environment", "scheduled_start"], name="deployment_env_start_idx"),
            models.Index(fields=["state", "scheduled_start"], name="deployment_state_start_idx"),
            models.Index(fields=["state", "next_action_at"], name="deployment_state_next_idx"),
            # The dashboard's periods: deployments ended (or booked to start) in a span, per environment.
            models.Index(fields=["environment", "finished_at"], name="deployment_env_finished_idx"),
            # The home page's "running and next" (E9): the bookings that hold a slot, the soonest first,
            # read in order until ten the user may see (no sort of every booking).
            models.Index(
                fields=["scheduled_start"],
                condition=models.Q(state__in=ACTIVE),
                name="deployment_active_start_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scheduled_end__gt=models.F("scheduled_start")),
                name="deployment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rfc.number} → {self.environment} at {self.scheduled_start:%Y-%m-%d %H:%M} UTC"

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number

    @property
    def audit_site_code(self) -> str:
        return self.environment.site.code

    @property
    def calendar_span(self) -> tuple:
        """The span the change calendar shows: the real one once it ran (start → end), else the
        booking."""
        if self.started_at and self.finished_at and self.finished_at > self.started_at:
            return self.started_at, self.finished_at
        return self.scheduled_start, self.scheduled_end


class StepState(models.TextChoices):
    RUNNING = "running", gettext_lazy("Running")
    SUCCEEDED = "succeeded", gettext_lazy("Succeeded")
    FAILED = "failed", gettext_lazy("Failed")
    SIMULATED = "simulated", gettext_lazy("Simulated")
    SKIPPED = "skipped", gettext_lazy("Skipped")
    INTERRUPTED = "interrupted", gettext_lazy("Interrupted")


class DeploymentStep(models.Model):
    """The journal: one row per step, written before the step runs and after it ends (X7).

    A row left "running" by a worker that died says the step may have half-run: the next worker
    never repeats it, it rolls back instead.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=40)
    phase = models.CharField(max_length=10, default="forward", help_text=gettext_lazy("forward or rollback"))
    adapter = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=12, choices=StepState.choices, default=StepState.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    output = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        db_table = "releases_deploymentstep"
        ordering = ["deployment", "order"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "phase", "name"], name="one_step_per_name")
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.phase}:{self.name} {self.state}"

    LABELS = {
        "vm_snapshot": gettext_lazy("VM snapshot"),
        "verify_checksum": gettext_lazy("Verify checksum"),
        "smoke": gettext_lazy("Smoke test"),
        "compare": gettext_lazy("Performance compare"),
        "signal_baseline": gettext_lazy("Business signals before"),
        "config": gettext_lazy("Configuration"),
        "restore_config": gettext_lazy("Restore the configuration"),
        "signals": gettext_lazy("Business signals after"),
        "restore_vm": gettext_lazy("Restore VM snapshot"),
        "revert_equipment": gettext_lazy("Revert equipment (previous recipe)"),
        "undo": gettext_lazy("Undo script"),
        "verify_undo": gettext_lazy("Smoke test after the undo"),
        "restore_backup": gettext_lazy("Restore the backup"),
        "verify_rollback": gettext_lazy("Smoke test after the restore"),
    }

    @property
    def label(self) -> str:
        return self.LABELS.get(self.name, self.name.replace("_", " ").capitalize())

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class CheckKind(models.TextChoices):
    IDEMPOTENCY = "idempotency", gettext_lazy("SQL idempotent")
    REHEARSAL = "rehearsal", gettext_lazy("Rollback rehearsed")
    REPLAY = "replay", gettext_lazy("Messages reconciled")
    PARALLEL = "parallel", gettext_lazy("Parallel run equal")


class CheckRun(models.Model):
    """Evidence computed from a real run against a copy of UAT (R7, R8, C3), bound to one artifact."""

    kind = models.CharField(max_length=12, choices=CheckKind.choices)
    rfc = models.ForeignKey(Rfc, on_delete=models.PROTECT, related_name="checks")
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="checks")
    artifact_sha256 = models.CharField(max_length=64)
    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.PROTECT, related_name="checks"
    )
    state = models.CharField(max_length=8, choices=RunState.choices, default=RunState.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    summary = models.TextField(blank=True)

    class Meta:
        db_table = "releases_checkrun"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["release", "kind", "state"], name="check_release_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.release} on {self.environment_id}: {self.state}"

    @property
    def audit_object_id(self) -> str:
        return self.rfc.number


class FlagChangeState(models.TextChoices):
    QUEUED = "queued", gettext_lazy("Queued")
    RUNNING = "running", gettext_lazy("Running")
    SUCCEEDED = "succeeded", gettext_lazy("Succeeded")
    ROLLED_BACK = "rolled_back", gettext_lazy("Turned off again")
    FAILED = "failed", gettext_lazy("Failed")


class FlagChange(models.Model):
    """A feature flag switched on or off at one environment (deployments/flags.py): a standard change —
    pre-approved by the approved release that declared it, recorded, inside a window unless the flag is
    declared safe, checked like a deployment, and turned off again by itself when the check fails."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.CASCADE, related_name="flag_changes"
    )
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="+")  # that declared it
    key = models.CharField(max_length=63)
    on = models.BooleanField()
    reason = models.CharField(max_length=300)
    state = models.CharField(max_length=12, choices=FlagChangeState.choices, default=FlagChangeState.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    journal = models.JSONField(default=list)  # [{"step", "ok", "output"}], in English (a record)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["environment", "key", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.key} {'on' if self.on else 'off'} at {self.environment_id} ({self.state})"
