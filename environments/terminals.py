"""Terminals report the version they run (seed 002: "The current version number should be displayed …
on all terminals").

A site has one terminal token (only its SHA-256 is kept; issuing a new one replaces the old at once).
Its terminals — MES clients, label stations, scanner PCs — report their name, product and version;
the environment page then lists every terminal that is not on the environment's active version of
its product, and a badge (SVG and JSON) shows the active version for a terminal's footer.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import semver
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core import clock
from environments.models import Environment, Site, Terminal, TerminalToken, Tier

TOKEN_PREFIX = "pcct_"
NAME_MAX = 100
# A terminal that has not reported for this long is shown as silent (it may be off, or gone).
SILENT_AFTER = timedelta(hours=24)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(site: Site, by=None) -> str:
    """A new token for `site`'s terminals, shown once; the previous one stops working at once."""
    from audit.services import record

    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token, created = TerminalToken.objects.update_or_create(
            site=site, defaults={"token_hash": _hash(raw), "created_at": clock.now(), "created_by": by}
        )
        record(
            "environments.terminal_token.issued",
            site,
            actor=by,
            after={"site": site.code, "replaced": not created},
        )
    return raw


def site_for(raw: str | None) -> Site | None:
    """The site whose terminal token `raw` is, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = TerminalToken.objects.select_related("site").filter(token_hash=_hash(raw)).first()
    return token.site if token else None


def _text(data: Mapping, field: str, errors: dict, *, required: bool = True) -> str:
    value = data.get(field, "")
    if not isinstance(value, str):
        errors[field] = [_("Give text.")]
        return ""
    value = value.strip()
    if not value:
        if required:
            errors[field] = [_("This field is required.")]
        return ""
    if len(value) > NAME_MAX:
        errors[field] = [_("At most %(count)d characters.") % {"count": NAME_MAX}]
    elif any(unicodedata.category(ch).startswith("C") for ch in value):
        errors[field] = [_("Control characters (line breaks, tabs, NUL …) are not allowed.")]
    return value


def report(site: Site, data: Mapping, address: str | None = None) -> Terminal:
    """Record what a terminal of `site` says it runs. Raises ValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    name = _text(data, "name", errors)
    product = _text(data, "product", errors, required=False)
    version = _text(data, "version", errors)
    tier = _text(data, "tier", errors, required=False).upper() or Tier.PROD
    if version and "version" not in errors and not semver.Version.is_valid(version):
        errors["version"] = [_("Not a semantic version (MAJOR.MINOR.PATCH).")]
    if tier not in Tier.values:
        errors["tier"] = [_("One of DEV, UAT or PROD.")]
    env = None
    if "tier" not in errors:
        env = Environment.objects.filter(site=site, tier=tier).prefetch_related("products").first()
        if env is None:
            errors["tier"] = [_("%(site)s has no %(tier)s environment.") % {"site": site.code, "tier": tier}]
    if env is not None and not product and "product" not in errors:
        products = list(env.versions)
        if len(products) == 1:
            product = products[0]
        else:
            errors["product"] = [_("Name the product: this environment runs several, or none yet.")]
    if errors:
        raise ValidationError(errors)
    now = clock.now()
    values = {"version": version, "reported_at": now, "address": address}
    for _attempt in range(2):  # two first reports at once: the second updates the row the first made
        try:
            with transaction.atomic():
                terminal, created = Terminal.objects.update_or_create(
                    environment=env, name=name, product=product, defaults=values
                )
            return terminal
        except IntegrityError:
            continue
    raise ValidationError({"name": [_("Report again: another report of this terminal was being written.")]})


@dataclass(frozen=True)
class TerminalRow:
    terminal: Terminal
    expected: str  # the environment's active version of the terminal's product ('' when it has none)
    current: bool
    silent: bool


def status(env: Environment) -> dict:
    """The environment's terminals against its active versions: all rows (stale first), the stale ones,
    and counts. Two queries whatever the number of terminals (versions are prefetched by the caller)."""
    expected = env.versions
    now = clock.now()
    rows = [
        TerminalRow(
            terminal=t,
            expected=expected.get(t.product, ""),
            current=expected.get(t.product) == t.version,
            silent=now - t.reported_at > SILENT_AFTER,
        )
        for t in env.terminals.order_by("name", "product")
    ]
    stale = [row for row in rows if not row.current]
    return {
        "rows": sorted(rows, key=lambda r: (r.current, r.terminal.name)),
        "stale": stale,
        "total": len(rows),
        "current": len(rows) - len(stale),
        "token": TerminalToken.objects.filter(site_id=env.site_id).first(),
    }


def badge(env: Environment, product: str = "") -> dict:
    """What a terminal shows in its footer: the active version of `product` (or the environment's only
    product) at this environment — as shields.io's endpoint format reads it."""
    versions = env.versions
    if not product and len(versions) == 1:
        product = next(iter(versions))
    version = versions.get(product, "")
    return {
        "schemaVersion": 1,
        "label": f"{env.site.code} {env.tier} {product}".strip(),
        "message": version or "unknown",
        "color": "1b6e3a" if version else "8a4b00",
        "product": product,
        "version": version,
    }


def badge_svg(data: Mapping) -> str:
    """A flat two-part badge (label | version) drawn in plain SVG, readable without a stylesheet."""
    from django.utils.html import escape

    label, message = str(data["label"]), str(data["message"])
    left, right = 12 + 7 * len(label), 12 + 7 * len(message)
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{escape(label)}: {escape(message)}">'
        f"<title>{escape(label)}: {escape(message)}</title>"
        f'<rect width="{left}" height="20" fill="#33414e"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="#{data["color"]}"/>'
        f'<g fill="#fff" font-family="DejaVu Sans,Verdana,sans-serif" font-size="11">'
        f'<text x="6" y="14">{escape(label)}</text>'
        f'<text x="{left + 6}" y="14">{escape(message)}</text></g></svg>'
    )
