"""Configuration items (issue 16 item 4): each site's production lines, modules, interfaces and
products as records, kept by the site's admins (the admin site, the API, a CSV import).

The CSV import is all or nothing: every row is checked first; a file with any bad row imports
nothing and says what is wrong on which line. A row naming an item that exists updates its
description (and makes it active again): importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import record
from core.roles import Role
from environments import access
from environments.models import ConfigurationItem, ItemKind, Site

COLUMNS = ("site", "kind", "name", "description")
MAX_ROWS = 5000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What a CSV's `kind` column may say: the value or the English label (files are not translated).
KINDS = {
    **{k.value: k.value for k in ItemKind},
    "production line": ItemKind.LINE.value,
    "module": ItemKind.MODULE.value,
    "interface": ItemKind.INTERFACE.value,
    "product": ItemKind.PRODUCT.value,
}


def may_keep(user, site: Site) -> bool:
    return access.has_role(user, Role.ADMIN, site)


def _row_problems(row: dict, sites: dict[str, Site], user) -> tuple[list[str], dict | None]:
    problems = []
    code = (row.get("site") or "").strip().upper()
    site = sites.get(code)
    if site is None:
        problems.append(_("unknown site %(code)s") % {"code": repr(code)} if code else _("no site"))
    elif not may_keep(user, site):
        problems.append(_("you are not an admin of %(code)s") % {"code": code})
    kind = KINDS.get((row.get("kind") or "").strip().lower())
    if kind is None:
        problems.append(
            _("kind %(kind)s is not one of line, module, interface, product")
            % {"kind": repr(row.get("kind", ""))}
        )
    name = (row.get("name") or "").strip()
    description = (row.get("description") or "").strip()
    if not name:
        problems.append(_("no name"))
    elif len(name) > 100:
        problems.append(_("the name is longer than 100 characters"))
    if CONTROL.search(name) or CONTROL.search(description):
        problems.append(_("control characters or line breaks"))
    if len(description) > 300:
        problems.append(_("the description is longer than 300 characters"))
    if problems:
        return problems, None
    return [], {"site": site, "kind": kind, "name": name, "description": description}


def import_csv(user, text: str) -> dict[str, int]:
    """Import items from CSV text with the header site,kind,name,description. Returns counts."""
    if "\x00" in text:
        raise ValidationError({"file": _("The file holds NUL bytes: save it as plain CSV (UTF-8).")})
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS[:3] if c not in header]
    if missing:
        raise ValidationError(
            {
                "file": _("Line 1: the header lacks %(columns)s (site,kind,name,description).")
                % {"columns": ", ".join(missing)}
            }
        )
    reader.fieldnames = header
    sites = {s.code: s for s in Site.objects.all()}
    errors, rows, seen = [], [], {}
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise ValidationError(
                {"file": _("More than %(rows)s rows: split the file.") % {"rows": MAX_ROWS}}
            )
        if None in row:  # more cells than columns
            errors.append(_("Line %(number)s: more cells than the header names.") % {"number": number})
            continue
        if not any((value or "").strip() for value in row.values()):
            continue  # a blank line
        problems, clean = _row_problems(row, sites, user)
        if clean is not None:
            key = (clean["site"].pk, clean["kind"], clean["name"].lower())
            if key in seen:
                problems.append(_("the same item as line %(line)s") % {"line": seen[key]})
            seen[key] = number
        if problems:
            errors.append(
                _("Line %(number)s: %(problems)s.") % {"number": number, "problems": "; ".join(problems)}
            )
        else:
            rows.append(clean)
    if errors:
        raise ValidationError({"file": errors})
    if not rows:
        raise ValidationError({"file": _("The file names no item.")})
    created = updated = 0
    with transaction.atomic():
        for row in rows:
            existing = ConfigurationItem.objects.filter(
                site=row["site"], kind=row["kind"], name__iexact=row["name"]
            ).first()
            if existing is None:
                ConfigurationItem.objects.create(**row)
                created += 1
            elif existing.description != row["description"] or not existing.active:
                existing.description, existing.active = row["description"], True
                existing.save(update_fields=["description", "active"])
                updated += 1
        record(
            "environments.items.imported",
            None,
            actor=user,
            object_type="environments.configurationitem",
            object_id="csv",
            after={
                "created": created,
                "updated": updated,
                "rows": len(rows),
                "sites": sorted({r["site"].code for r in rows}),
            },
        )
    return {"created": created, "updated": updated, "unchanged": len(rows) - created - updated}


def create(user, site: Site, kind: str, name: str, description: str = "") -> ConfigurationItem:
    if not may_keep(user, site):
        raise PermissionDenied(
            _("Only an admin of %(site)s keeps its configuration items.") % {"site": site.code}
        )
    problems, clean = _row_problems(
        {"site": site.code, "kind": kind, "name": name, "description": description}, {site.code: site}, user
    )
    if problems:
        raise ValidationError({"item": "; ".join(problems).capitalize() + "."})
    if ConfigurationItem.objects.filter(site=site, kind=clean["kind"], name__iexact=clean["name"]).exists():
        raise ValidationError(
            {
                "name": _("%(site)s has this %(kind)s already.")
                % {"site": site.code, "kind": ItemKind(clean["kind"]).label.lower()}
            }
        )
    with transaction.atomic():
        item = ConfigurationItem.objects.create(**clean)
        record("environments.item.created", item, actor=user, after={"kind": item.kind, "name": item.name})
    return item
