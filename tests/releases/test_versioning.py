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
