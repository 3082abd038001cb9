import pytest

from tests.reports import history as plant_history


@pytest.fixture
def history(people, site_a, site_b):
    """November 2026 at plant A (Berlin) and plant B (Chicago): tests/reports/history.py."""
    return plant_history.build(people, site_a, site_b)
