"""DEV is the sandbox (E2): a new site's DEV environment records synthetic data, full developer rights
and no SLA, and a developer may deploy there — but not to PROD."""

from __future__ import annotations

import pytest

from environments import access
from environments.models import Tier

pytestmark = [pytest.mark.django_db, pytest.mark.req("E2")]


def test_dev_records_synthetic_data_full_rights_and_no_sla(site_a):
    dev = site_a.environments.get(tier=Tier.DEV)
    assert "Synthetic" in dev.data_policy
    assert "full rights" in dev.access_policy
    assert dev.sla == "None."


def test_a_developer_deploys_to_dev_but_not_to_prod(cast, site_a):
    developer = cast["dev"]
    assert access.can(developer, "deploy", site_a.environments.get(tier=Tier.DEV))
    assert not access.can(developer, "deploy", site_a.environments.get(tier=Tier.PROD))
