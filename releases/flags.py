"""Feature flags a release declares (issue 19 item 5; seed 001 "decouple deployment from feature
exposure; allows controlled rollout to plants").

A declaration is ``{"key": "erp_batch_confirmations", "description": "…", "safe": false}``: the key the
plant's software reads, what turning it on does, and whether it may be switched outside a deployment
window. Switching one at a site is `deployments.flags`' business; here only what a declaration is.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

KEY = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
MAX_FLAGS = 20
SAFE_MARK = "[safe]"


def clean(value) -> list[dict]:
    """The declarations as stored, or ValidationError saying what is wrong (field "flags")."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError({"flags": [_("Feature flags are a list of {key, description, safe}.")]})
    if len(value) > MAX_FLAGS:
        raise ValidationError({"flags": [_("At most %(n)d feature flags per release.") % {"n": MAX_FLAGS}]})
    flags, problems, seen = [], [], set()
    for item in value:
        if not isinstance(item, dict):
            problems.append(_("A feature flag is an object with a key and a description."))
            continue
        key = item.get("key")
        description = item.get("description", "")
        if not isinstance(key, str) or not KEY.match(key):
            problems.append(
                _(
                    "%(key)s: a flag key is 2–63 lower-case letters, digits or underscores, starting with a letter."
                )
                % {"key": repr(key)}
            )
            continue
        if key in seen:
            problems.append(_("%(key)s is declared twice.") % {"key": key})
        if (
            not isinstance(description, str)
            or len(description) > 200
            or any(c in description for c in "\r\n\x00")
        ):
            problems.append(
                _("%(key)s: the description is one line of at most 200 characters.") % {"key": key}
            )
            continue
        if not isinstance(item.get("safe", False), bool):
            problems.append(_("%(key)s: safe is true or false.") % {"key": key})
            continue
        seen.add(key)
        flags.append({"key": key, "description": description.strip(), "safe": item.get("safe", False)})
    if problems:
        raise ValidationError({"flags": problems})
    return flags


def parse(text: str) -> list[dict]:
    """The form's text: one flag per line, ``key: what it does``, ending in [safe] when it may be
    switched outside a deployment window."""
    items = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        safe = line.endswith(SAFE_MARK)
        line = line.removesuffix(SAFE_MARK).strip()
        key, _sep, description = line.partition(":")
        items.append({"key": key.strip(), "description": description.strip(), "safe": safe})
    return clean(items)


def as_text(flags: list[dict]) -> str:
    return "\n".join(
        f"{f['key']}: {f['description']}" + (f" {SAFE_MARK}" if f.get("safe") else "") for f in flags or []
    )
