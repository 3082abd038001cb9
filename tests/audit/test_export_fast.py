"""The CSV export streamed from PostgreSQL's text tuples writes the same bytes as the model-by-model
export did (columns, formats, formula neutralisation: FAULTS.md case 18)."""

from __future__ import annotations

import csv
import io

import pytest

from audit import trail
from audit.models import AuditEvent
from tests.audit.test_chain_canonical import _events, _store

pytestmark = pytest.mark.django_db


def _reference(filters: trail.Filters) -> str:
    writer = csv.writer(trail._Line())
    lines = [writer.writerow(trail.COLUMNS)]
    lines += [writer.writerow(trail._cells(event)) for event in trail._events(filters)]
    return "".join(lines)


def _tricky() -> None:
    events = _events(30)
    for n, text in enumerate(
        ['=cmd|"/c calc"!A1', "+1", "-1", "@SUM(1)", "\tx", "\rx", "ok", "a, b", "x\ny", 'q"']
    ):
        events[n].reason = text
        events[n].object_repr = text
        events[n].actor_name = text
    events[8].after = True
    events[9].after = 3.25
    _store(events)


@pytest.mark.parametrize(
    "filters",
    [
        trail.Filters(),
        trail.Filters(site="BER"),
        trail.Filters(action="tests.tricky.1"),
        trail.Filters(start="2026-01-10"),
        trail.Filters(start="not a date"),
    ],
    ids=["all", "site", "action", "start", "invalid"],
)
def test_export_writes_what_the_model_export_wrote(filters):
    _tricky()
    for chunk_size in (1, 7, 5000):
        assert "".join(trail.export_csv(filters, chunk_size=chunk_size)) == _reference(filters)


def test_export_neutralises_every_formula_cell():
    _tricky()
    body = "".join(trail.export_csv(trail.Filters()))
    table = list(csv.reader(io.StringIO(body, newline="")))
    assert len(table) == AuditEvent.objects.count() + 1
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\x00")) for row in table for cell in row)


def test_neutralise_nul():
    assert trail.neutralise("\x00=1") == "'\x00=1"
