"""The clock's notifications: a reminder before a PROD window (once), a gate newly failing on a
scheduled RFC (once per pass → fail change). Time is moved explicitly."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from notify import sweeps
from notify.models import GateState, Notice
from releases import gates
from releases.models import Rfc
from releases.states import RfcState
from tests import factories


@pytest.fixture
def booked(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SCHEDULED)
    deployment = factories.booking(rfc, site_a, cast["releasemgr"], hours_ahead=3)
    return rfc, deployment


def test_one_reminder_before_the_window(booked, settings):
    settings.NOTIFY_WINDOW_REMINDER_MINUTES = 60
    rfc, deployment = booked
    assert sweeps.window_reminders() == 0  # three hours ahead: not yet
    with time_machine.travel(deployment.scheduled_start - timedelta(minutes=45), tick=False):
        assert sweeps.window_reminders() == 1
        assert sweeps.window_reminders() == 0  # a second beat finds nothing left
    told = Notice.objects.filter(kind="rfc.window_reminder").values_list("user__username", flat=True)
    assert sorted(told) == ["dev", "releasemgr"]
    with time_machine.travel(deployment.scheduled_start + timedelta(minutes=1), tick=False):
        assert sweeps.window_reminders() == 0  # started (or missed): never reminded late


def test_a_gate_that_starts_failing_is_told_once(booked):
    rfc, _ = booked
    failing = [g.name for g in gates.evaluate(rfc, "schedule") if not g.passed]
    passing = [g.name for g in gates.evaluate(rfc, "schedule") if g.passed]
    assert failing and passing  # a bare draft forced to scheduled: some gates fail, some pass
    for name in failing + passing:
        GateState.objects.create(rfc=rfc, gate=name, passed=True)
    assert sweeps.failing_gates() == len(failing)
    assert sweeps.failing_gates() == 0  # still failing: not news any more
    GateState.objects.filter(rfc=rfc, gate=failing[0]).update(passed=True)  # it passed in between
    assert sweeps.failing_gates() == 1
    notices = Notice.objects.filter(kind="gate.failing", user__username="dev")
    assert notices.count() == len(failing) + 1


def test_only_scheduled_rfcs_are_watched(booked):
    rfc, _ = booked
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.APPROVED)
    assert sweeps.failing_gates() == 0
    assert not GateState.objects.exists()
