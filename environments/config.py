"""Configuration bundles: what a release carries and an environment has (issue 19 item 2; seed 001
"version-control ERP configuration, workflow rules, and integration mappings").

A bundle is a named, flat set of settings — ``{"erp-settings": {"plant.currency": "EUR", …}}`` —
uploaded as JSON files (the file's name is the bundle's) or sent in the API. The release records a
SHA-256 of all its bundles in canonical form; a release without an artifact is a configuration-only
release and that checksum is its artifact's, so every gate and promotion check that holds for code
holds for configuration: promoted DEV → UAT → PROD unchanged, verified again before each apply.
"""

from __future__ import annotations

import hashlib
import json
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

BUNDLE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
MAX_BUNDLES, MAX_KEYS, MAX_VALUE = 20, 2000, 2000


def _value_problem(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return False
    return not isinstance(value, str) or len(value) > MAX_VALUE or "\x00" in value


def clean(value) -> dict[str, dict]:
    """The bundles as stored (values as text), or ValidationError on field "config"."""
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise ValidationError(
            {"config": [_("Configuration is an object of bundles: {bundle: {key: value}}.")]}
        )
    if len(value) > MAX_BUNDLES:
        raise ValidationError({"config": [_("At most %(n)d configuration bundles.") % {"n": MAX_BUNDLES}]})
    problems, bundles = [], {}
    for name, settings in value.items():
        if not isinstance(name, str) or not BUNDLE.match(name):
            problems.append(
                _("%(name)s: a bundle's name is lower-case letters, digits, dots, dashes or underscores.")
                % {"name": repr(name)}
            )
            continue
        if not isinstance(settings, dict) or not settings:
            problems.append(_("%(name)s: a bundle is a non-empty flat object of settings.") % {"name": name})
            continue
        if len(settings) > MAX_KEYS:
            problems.append(_("%(name)s: at most %(n)d settings.") % {"name": name, "n": MAX_KEYS})
            continue
        bad_keys = [k for k in settings if not isinstance(k, str) or not KEY.match(k)]
        bad_values = [k for k, v in settings.items() if _value_problem(v)]
        if bad_keys:
            problems.append(
                _("%(name)s: keys such as %(key)s are letters, digits and . _ : / - (up to 200).")
                % {"name": name, "key": repr(bad_keys[0])}
            )
        elif bad_values:
            problems.append(
                _(
                    "%(name)s: %(key)s is a text (up to 2,000 characters), a number or true/false, not a list or object."
                )
                % {"name": name, "key": bad_values[0]}
            )
        else:
            bundles[name] = {k: _text(v) for k, v in sorted(settings.items())}
    if problems:
        raise ValidationError({"config": problems})
    return dict(sorted(bundles.items()))


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checksum(bundles: dict) -> str:
    """SHA-256 of the bundles in canonical form ("" for none)."""
    if not bundles:
        return ""
    canonical = json.dumps(bundles, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def from_files(files) -> dict:
    """Bundles from uploaded JSON files: each a flat object; the bundle is named after the file."""
    found, problems = {}, []
    for upload in files or []:
        name = re.sub(r"\.json$", "", upload.name.rsplit("/", 1)[-1], flags=re.IGNORECASE).lower()
        try:
            data = json.loads(upload.read(1_000_001).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            problems.append(_("%(file)s is not a JSON file.") % {"file": upload.name})
            continue
        found[name] = data
    if problems:
        raise ValidationError({"config": problems})
    return clean(found)


def diff(before: dict, after: dict) -> list[tuple[str, str, str | None, str | None]]:
    """(bundle, key, value before, value after) for every setting that differs, in order."""
    rows = []
    for bundle in sorted(set(before) | set(after)):
        a, b = before.get(bundle) or {}, after.get(bundle) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                rows.append((bundle, key, a.get(key), b.get(key)))
    return rows
