"""Fixtures of the tests that deploy to the real demo plant (its server runs as a subprocess)."""

from __future__ import annotations

import pytest

from demo_plant.artifacts import build
from tests.demo_plant_server import site_plant


@pytest.fixture
def media(settings, tmp_path):
    """Uploads, snapshots and backups in the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def plant(tmp_path, site_a):
    """The demo plant for site A's DEV, UAT and PROD, running, each pipeline pointing at it."""
    with site_plant(tmp_path / "plant", site_a) as root:
        yield root


@pytest.fixture
def artifacts(tmp_path):
    return build(tmp_path / "artifacts")
