"""Class of change from the version bump against what runs in PROD (R5)."""

from __future__ import annotations

import semver
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


class ChangeClass(models.TextChoices):
    PATCH = "patch", gettext_lazy("Patch")
    MINOR = "minor", gettext_lazy("Minor (feature)")
    MAJOR = "major", gettext_lazy("Major (breaking)")


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
        raise VersionRefused(
            _("%(version)s is not a semantic version (MAJOR.MINOR.PATCH).") % {"version": repr(new)}
        ) from None
    if target.prerelease:
        raise VersionRefused(_("%(version)s is a pre-release; only releases go to PROD.") % {"version": new})
    running = semver.Version.parse(current) if current else semver.Version(0, 0, 0)
    if target == running:
        raise VersionRefused(_("%(version)s already runs in PROD.") % {"version": new})
    if target < running:
        raise VersionRefused(
            _("%(version)s is older than %(running)s, which runs in PROD: a downgrade is not a release.")
            % {"version": new, "running": running}
        )
    if target.major != running.major:
        return ChangeClass.MAJOR
    if target.minor != running.minor:
        return ChangeClass.MINOR
    return ChangeClass.PATCH


def highest(classes) -> ChangeClass | None:
    classes = list(classes)
    return max(classes, key=CLASS_RANK.__getitem__) if classes else None


def major_change_gaps(change_class: str, downtime_minutes: int, retraining_note: str) -> dict[str, str]:
    """What a major change still lacks (R5): estimated downtime above zero and an operator-retraining
    note. Field name → message; empty when nothing is missing or the change is not major. The RFC
    form and the "Downtime matches class" gate both ask this."""
    if change_class != ChangeClass.MAJOR:
        return {}
    gaps = {}
    if downtime_minutes <= 0:
        gaps["estimated_downtime_minutes"] = _(
            "A major change means downtime: estimate it (minutes above 0)."
        )
    if not retraining_note.strip():
        gaps["retraining_note"] = _("A major change needs operators retrained: say how.")
    return gaps


def sort_key(version: str):
    """Semantic order for a version string ("2.10.0" after "2.9.1"); one that does not parse sorts
    first, by its text."""
    try:
        return (1, semver.Version.parse(version), "")
    except (ValueError, TypeError):
        return (0, semver.Version(0, 0, 0), str(version))
