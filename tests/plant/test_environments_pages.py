"""The environments board and pages (E1, E9): every site's tiers and versions at a glance."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import client_for, make_site

pytestmark = pytest.mark.django_db


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_board_shows_every_tier_and_version(cast, site_a, site_b):

    from environments.models import ProductVersion

    ProductVersion.objects.filter(environment__site=site_b, environment__tier="PROD").update(version="2.7.1")
    html = client_for(cast["releasemgr"]).get("/environments/").content.decode()
    assert "PLA" in html and "PLB" in html and "2.7.1" in html
    assert html.count('class="tier tier-prod"') == 2


def test_board_queries_do_not_grow_with_sites(cast):
    client = client_for(cast["releasemgr"])
    few = _queries(client, "/environments/")
    for n in range(20):
        make_site(f"X{n:02d}")
    assert _queries(client, "/environments/") == few


def test_home_queries_do_not_grow_with_sites(cast):
    client = client_for(cast["dev"])
    few = _queries(client, "/")
    for n in range(20):
        make_site(f"Y{n:02d}")
    assert _queries(client, "/") == few


def test_dev_plus_prod_is_a_valid_site(cast):
    make_site("DUO", tiers=("DEV", "PROD"))
    html = client_for(cast["admin"]).get("/environments/").content.decode()
    assert "not set up" in html


def test_environment_page_shows_policies_and_footer_version(cast, site_a):
    from core.version import __version__

    html = client_for(cast["dev"]).get(f"/environments/{site_a.code}/UAT/").content.decode()
    assert "Developers read only; key users read/write." in html
    assert f"v{__version__}" in html
    assert "Edit environment" not in html  # a developer may not configure


def test_edit_form_errors_keep_input_and_change_nothing(cast, site_a):
    from environments.models import Environment

    client = client_for(cast["admin"])
    response = client.post(
        f"/environments/{site_a.code}/DEV/edit/", {"purpose": "New", "version_0": "x.y", "reason": "try"}
    )
    assert response.status_code == 400
    assert "is not a semantic version" in response.content.decode()
    assert Environment.objects.get(site=site_a, tier="DEV").purpose != "New"
