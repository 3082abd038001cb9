"""Class of change from the version bump against what runs in PROD (R5)."""

from __future__ import annotations

import semver
from django.db import models


class ChangeClass(models.TextChoices):
    PATCH = "patch", "Patch"
    MINOR = "minor", "Minor (feature)"
    MAJOR = "major", "Major (breaking)"


CLASS_RANK = {ChangeClass.PATCH: 0, ChangeClass.MINOR: 1, ChangeClass.MAJOR: 2}


class VersionRefused(ValueError):
    """The version cannot go to PROD at all; the message says why in the plant's words."""


def classify(new: str, current: str | None) -> ChangeClass:
    """patch, minor or major for `new` replacing `current` in PROD.

    A downgrade or the same version is refused, and so is a pre-release (PROD runs releases
    only). With nothing in PROD yet the bump is counted from 0.0.0.
    """
    try:
        target = semver.Version.parse(new)
    except ValueError:
        raise VersionRefused(f"{new!r} is not a semantic version (MAJOR.MINOR.PATCH).") from None
    if target.prerelease:
        raise VersionRefused(f"{new} is a pre-release; only releases go to PROD.")
    running = semver.Version.parse(current) if current else semver.Version(0, 0, 0)
    if target == running:
        raise VersionRefused(f"{new} already runs in PROD.")
    if target < running:
        raise VersionRefused(
            f"{new} is older than {running}, which runs in PROD: a downgrade is not a release."
        )
    if target.major != running.major:
        return ChangeClass.MAJOR
    if target.minor != running.minor:
        return ChangeClass.MINOR
    return ChangeClass.PATCH


def highest(classes) -> ChangeClass | None:
    classes = list(classes)
    return max(classes, key=CLASS_RANK.__getitem__) if classes else None
