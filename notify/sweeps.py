"""What the clock, not an act, makes worth telling: a PROD window about to open, and a gate that stopped
passing on a scheduled RFC. Beat runs `sweep()` every NOTIFY_SWEEP_SECONDS; the database says what is
due, so two beats (or a repeated run) tell each thing once.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from core import clock
from deployments.models import Deployment
from deployments.states import DeploymentState
from environments.models import Tier
from notify import events
from notify.models import GateState, WindowReminder
from releases import gates
from releases.models import Rfc
from releases.states import RfcState

BATCH = 50


def window_reminders() -> int:
    """Remind once per PROD deployment whose window opens within NOTIFY_WINDOW_REMINDER_MINUTES."""
    now = clock.now()
    horizon = now + timedelta(minutes=settings.NOTIFY_WINDOW_REMINDER_MINUTES)
    told = 0
    with transaction.atomic():
        due = list(
            Deployment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                state=DeploymentState.SCHEDULED,
                environment__tier=Tier.PROD,
                scheduled_start__gt=now,
                scheduled_start__lte=horizon,
            )
            .exclude(pk__in=WindowReminder.objects.values("deployment_id"))
            .select_related("rfc", "rfc__author", "rfc__release", "environment", "environment__site")
            .order_by("scheduled_start")[:BATCH]
        )
        for deployment in due:
            WindowReminder.objects.create(deployment=deployment, sent_at=now)
            minutes = max(1, round((deployment.scheduled_start - now).total_seconds() / 60))
            events.emit(
                "rfc.window_reminder",
                deployment.rfc,
                deployment=deployment,
                data={
                    "start": _("%(start)s UTC (in %(minutes)s min)")
                    % {
                        "start": date_format(deployment.scheduled_start, "SHORT_DATETIME_FORMAT"),
                        "minutes": minutes,
                    }
                },
            )
            told += 1
    return told


def failing_gates() -> int:
    """Tell the author and the release managers when a gate of a scheduled RFC goes from pass to fail.
    A scheduled RFC passed its gates when it was scheduled: a gate first seen failing is news."""
    told = 0
    for rfc in Rfc.objects.filter(state=RfcState.SCHEDULED).select_related("author", "release")[:500]:
        with transaction.atomic():
            locked = Rfc.objects.select_for_update(skip_locked=True).filter(pk=rfc.pk).first()
            if locked is None or locked.state != RfcState.SCHEDULED:
                continue
            known = {g.gate: g for g in GateState.objects.filter(rfc=rfc)}
            for gate in gates.evaluate(rfc, "schedule"):
                before = known.get(gate.name)
                was_passing = before is None or before.passed
                if before is None:
                    GateState.objects.create(rfc=rfc, gate=gate.name, passed=gate.passed)
                elif before.passed != gate.passed:
                    before.passed, before.checked_at = gate.passed, clock.now()
                    before.save(update_fields=["passed", "checked_at"])
                if not gate.passed and was_passing:
                    events.emit("gate.failing", rfc, data={"gate": gate.name, "reason": gate.reason})
                    told += 1
    return told


def sweep() -> dict[str, int]:
    return {"reminded": window_reminders(), "gates": failing_gates()}
