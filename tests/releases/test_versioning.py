"""R5: the class of change follows from the version bump against what runs in PROD."""

import pytest

from releases.versioning import ChangeClass, VersionRefused, classify


@pytest.mark.parametrize(
    "new,current,expected",
    [
        ("1.0.1", "1.0.0", ChangeClass.PATCH),
        ("1.1.0", "1.0.7", ChangeClass.MINOR),
        ("1.2.3", "1.0.0", ChangeClass.MINOR),
        ("2.0.0", "1.9.9", ChangeClass.MAJOR),
        ("3.1.4", "1.0.0", ChangeClass.MAJOR),
        ("1.0.0", None, ChangeClass.MAJOR),
        ("0.1.0", None, ChangeClass.MINOR),
        ("1.0.0+build.7", "0.9.0", ChangeClass.MAJOR),
    ],
)
def test_classification_table(new, current, expected):
    assert classify(new, current) == expected


@pytest.mark.parametrize(
    "new,current,message",
    [
        ("1.0.0", "1.0.1", "downgrade"),
        ("0.9.9", "1.0.0", "downgrade"),
        ("1.0.0", "1.0.0", "already runs in PROD"),
        ("2.0.0-rc.1", "1.0.0", "pre-release"),
        ("1.0", "1.0.0", "not a semantic version"),
        ("v1.0.1", "1.0.0", "not a semantic version"),
    ],
)
def test_refused_bumps(new, current, message):
    with pytest.raises(VersionRefused, match=message):
        classify(new, current)


def test_an_rfcs_environments_are_read_once_with_the_version_each_runs(people, site_a, site_b):
    """R5 and the RFC page: the target sites' environments come in one query, each with the version of
    the release's own product it runs (none where the product is not installed), and are kept on the
    RFC object for the class, the proving tiers and the promotion rows; the class is the same as
    classify_rfc reads without them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from environments.models import ProductVersion, Tier
    from releases.models import Impact
    from releases.services import classify_rfc, site_environments
    from tests import factories

    rfc = factories.rfc(people["dev"], site_a, version="1.1.0")
    Impact.objects.create(rfc=rfc, site=site_b, lines=["Line 1"])
    ProductVersion.objects.filter(environment__site=site_b, environment__tier=Tier.PROD).update(
        version="1.0.5"
    )
    ProductVersion.objects.filter(environment__site=site_a, environment__tier=Tier.DEV).delete()
    ProductVersion.objects.create(
        environment=site_a.environments.get(tier=Tier.DEV), product="ERP", version="9.0.0"
    )
    rfc = type(rfc).objects.get(pk=rfc.pk)
    with CaptureQueriesContext(connection) as seen:
        environments = site_environments(rfc)
        assert site_environments(rfc) is environments
    assert len([q for q in seen.captured_queries if "environments_environment" in q["sql"]]) == 1
    running = {(e.site.code, e.tier): e.running for e in environments}
    assert running[(site_a.code, Tier.DEV)] is None  # only ERP runs there
    assert running[(site_a.code, Tier.PROD)] == "1.0.0"
    assert running[(site_b.code, Tier.PROD)] == "1.0.5"
    sites = [site_a, site_b]
    assert classify_rfc(rfc.release, sites, environments) == classify_rfc(rfc.release, sites) == "minor"
