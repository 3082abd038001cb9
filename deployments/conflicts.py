"""Conflicting changes (issue 16 item 5): two RFCs that name the same configuration item (a line, a
module, an interface) at one site, with deployments in overlapping slots at any of the site's
environments.

Two PROD deployments at one site never overlap at all (the environment takes one deployment at a
time: `scheduling.plan`). Any other overlap on a shared item — a UAT test run on line 2 while line 2's
PROD changes, two RFCs for the weighing module in DEV and PROD — is a warning the release manager
acknowledges when booking; the acknowledgement is audited with the conflicts it saw. Products are
not compared: every change of a product's release touches the product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from deployments.models import Deployment
from deployments.states import ACTIVE
from environments.models import ItemKind
from releases.models import Impact

RULE = gettext_noop("Conflicting changes")  # the rule's name: a key, translated where shown


@dataclass(frozen=True)
class Conflict:
    deployment: Deployment
    shared: list[str]  # "production line Line 2", in the reader's language
    recorded: list[str] = field(default_factory=list)  # the same in English, for the audit trail

    def describe(self) -> str:
        d = self.deployment
        zone = d.environment.site.zone
        return gettext(
            "%(rfc)s (%(title)s) is %(state)s in %(environment)s %(start)s–%(end)s and touches the same %(items)s"
        ) % {
            "rfc": d.rfc.number,
            "title": d.rfc.title,
            "state": d.get_state_display().lower(),
            "environment": d.environment,
            "start": f"{d.scheduled_start.astimezone(zone):%a %d %b %H:%M}",
            "end": f"{d.scheduled_end.astimezone(zone):%H:%M %Z}",
            "items": ", ".join(self.shared),
        }

    def as_dict(self) -> dict:
        return {
            "rfc": self.deployment.rfc.number,
            "environment": str(self.deployment.environment),
            "items": self.recorded or self.shared,
        }


def labelled(impact) -> dict[tuple[str, str], str]:
    """The items an impact names: (kind, name in lower case) → "production line Line 2"."""
    return {(kind, n.lower()): f"{ItemKind(kind).label.lower()} {n}" for kind, n in _named(impact)}


def touching(rfc, site, start: datetime, end: datetime) -> list[Conflict]:
    """Other RFCs' deployments at `site` (any tier) in [start, end) that name an item `rfc` names there."""
    mine = Impact.objects.filter(rfc=rfc, site=site).first()
    names = labelled(mine) if mine is not None else {}
    if not names:
        return []
    with translation.override(None):  # the audit trail keeps the items in English
        english = labelled(mine)
    others = list(
        Deployment.objects.filter(
            environment__site=site, state__in=ACTIVE, scheduled_start__lt=end, scheduled_end__gt=start
        )
        .exclude(rfc=rfc)
        .select_related("rfc", "environment__site")
        .order_by("scheduled_start", "pk")
    )
    impacts = {i.rfc_id: i for i in Impact.objects.filter(site=site, rfc_id__in={d.rfc_id for d in others})}
    found = []
    for d in others:
        other = impacts.get(d.rfc_id)
        shared = sorted(set(names) & set(labelled(other))) if other is not None else []
        if shared:
            found.append(Conflict(d, [names[key] for key in shared], [english[key] for key in shared]))
    return found


def neighbours(rfc, impacts, limit: int | None = None, left_out: dict | None = None) -> dict[int, list[dict]]:
    """Per site of `impacts` (the RFC's): the other open RFCs that name an item it names there, with
    the items they share and their booked or running deployments at that site (three queries: the
    impacts' item lists, the RFCs shown, their deployments). With `limit`, at most that many per site
    (by number); `left_out` gets how many more each site has."""
    from releases.models import Rfc
    from releases.states import OPEN_STATES

    mine = {i.site_id: i for i in impacts}
    keys = {site_id: _keys(i.lines, i.modules, i.interfaces) for site_id, i in mine.items()}
    if not any(keys.values()):
        return {}
    others = Impact.objects.filter(
        _naming_any(mine.values()), site_id__in=list(mine), rfc__state__in=OPEN_STATES
    ).exclude(rfc=rfc)
    if connection.vendor == "postgresql":
        kept = _matching_in_database(others, keys, limit, left_out)
    else:
        kept = _matching_here(others, keys, limit, left_out)
    rfcs = Rfc.objects.in_bulk({rfc_id for entries in kept.values() for rfc_id, _ in entries}) if kept else {}
    found: dict[int, list[dict]] = {}
    for site_id, entries in kept.items():
        names = labelled(mine[site_id])
        found[site_id] = [
            {"rfc": rfcs[rfc_id], "shared": [names[key] for key in sorted(shared)], "bookings": []}
            for rfc_id, shared in entries
        ]
    if found:
        by_rfc = {
            (entry["rfc"].pk, site_id): entry for site_id, entries in found.items() for entry in entries
        }
        for d in Deployment.objects.filter(
            rfc_id__in={rfc_id for rfc_id, _ in by_rfc},
            environment__site_id__in=list(found),
            state__in=ACTIVE,
        ).select_related("environment__site"):
            entry = by_rfc.get((d.rfc_id, d.environment.site_id))
            if entry is not None:
                zone = d.environment.site.zone
                entry["bookings"].append(
                    f"{d.environment.tier} {d.scheduled_start.astimezone(zone):%a %d %b %H:%M %Z}"
                )
    return found


def _matching_here(others, keys, limit, left_out) -> dict[int, list[tuple[int, set]]]:
    """Compares every candidate's items here (SQLite): the lists alone, not model instances."""
    kept: dict[int, list[tuple[int, set]]] = {}
    rows = others.order_by("rfc__number", "site_id").values_list(
        "site_id", "rfc_id", "lines", "modules", "interfaces"
    )
    for site_id, rfc_id, lines, modules, interfaces in rows:
        shared = keys[site_id] & _keys(lines, modules, interfaces)
        if not shared:
            continue
        if limit is not None and len(kept.get(site_id, ())) >= limit:
            if left_out is not None:
                left_out[site_id] = left_out.get(site_id, 0) + 1
            continue
        kept.setdefault(site_id, []).append((rfc_id, shared))
    return kept


_ASCII_MATCH = """EXISTS (SELECT 1 FROM jsonb_array_elements_text("releases_impact"."{column}") AS e
WHERE octet_length(e) = char_length(e) AND lower(e COLLATE "C") = ANY(%s))"""
_NOT_ASCII = (
    """octet_length("releases_impact"."{column}"::text) <> char_length("releases_impact"."{column}"::text)"""
)


_RANKED = """
    WITH judged (site_id, rfc_id, number, sure, unsure) AS ({judged}),
    ranked AS (
        SELECT site_id, rfc_id, number, sure,
               row_number() OVER (PARTITION BY site_id, sure ORDER BY number) AS rank,
               count(*) OVER (PARTITION BY site_id, sure) AS sure_count
        FROM judged WHERE sure OR unsure
    )
    SELECT ranked.site_id, ranked.rfc_id, i.lines, i.modules, i.interfaces, ranked.sure, ranked.sure_count
    FROM ranked JOIN {table} AS i ON i.rfc_id = ranked.rfc_id AND i.site_id = ranked.site_id
    WHERE NOT ranked.sure OR ranked.rank <= %s
    ORDER BY ranked.number, ranked.site_id"""


def _matching_in_database(others, keys, limit, left_out) -> dict[int, list[tuple[int, set]]]:
    """PostgreSQL compares the items and returns only the rows shown, with the count of the rest: on a
    busy line hundreds of open changes share an item. An item written in plain ASCII matches in SQL
    exactly as `_keys` lower-cases it ("sure"); an impact with any other item ("unsure", rare) comes
    back whole and is compared here, so the comparison stays Python's case-blind one."""
    sure_sql, sure_params = [], []
    for site_id, site_keys in keys.items():
        per_kind, names = [], []
        for kind, column in _FIELDS.items():
            ascii_names = sorted(n for k, n in site_keys if k == kind and n.isascii())
            if ascii_names:
                per_kind.append(_ASCII_MATCH.format(column=column))
                names.append(ascii_names)
        if per_kind:
            sure_sql.append(f'("releases_impact"."site_id" = %s AND ({" OR ".join(per_kind)}))')
            sure_params += [site_id, *names]
    # Bound parameters only; the SQL text is built from the constants above.
    sure = RawSQL(" OR ".join(sure_sql) or "FALSE", sure_params, BooleanField())  # noqa: S611
    unsure = RawSQL(" OR ".join(_NOT_ASCII.format(column=c) for c in _FIELDS.values()), [], BooleanField())  # noqa: S611
    # Each impact judged once, then ranked per site: only the rows shown come back with their lists.
    judged, params = (
        others.annotate(sure=sure, unsure=unsure)
        .values_list("site_id", "rfc_id", "rfc__number", "sure", "unsure")
        .order_by()
        .query.sql_with_params()
    )
    table = connection.ops.quote_name(Impact._meta.db_table)
    # The judged query is Django's, its values bound parameters.
    sql = _RANKED.format(judged=judged, table=table)

    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, limit if limit is not None else 2**31 - 1))
        rows = [
            (site_id, rfc_id, *(_decoded(v) for v in lists), is_sure, sure_count)
            for site_id, rfc_id, *lists, is_sure, sure_count in cursor.fetchall()
        ]
    found: dict[int, list[tuple[int, set]]] = {}
    sure_total: dict[int, int] = {}  # per site: how many impacts matched in SQL, shown or not
    unsure_total: dict[int, int] = {}
    for site_id, rfc_id, lines, modules, interfaces, is_sure, sure_count in rows:
        shared = keys[site_id] & _keys(lines, modules, interfaces)
        if not shared:  # an unsure impact that shares nothing after all
            continue
        if is_sure:
            sure_total[site_id] = sure_count
        else:
            unsure_total[site_id] = unsure_total.get(site_id, 0) + 1
        found.setdefault(site_id, []).append((rfc_id, shared))
    if limit is None:
        return found
    kept = {}
    for site_id, entries in found.items():
        kept[site_id] = entries[:limit]  # by number: the first `limit` of the sure and the unsure found
        more = sure_total.get(site_id, 0) + unsure_total.get(site_id, 0) - len(kept[site_id])
        if more and left_out is not None:
            left_out[site_id] = left_out.get(site_id, 0) + more
    return kept


def _decoded(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _keys(lines, modules, interfaces) -> set[tuple[str, str]]:
    """The items an impact names, as `labelled` keys them (kind, name in lower case), without labels."""
    return (
        {("line", n.lower()) for n in lines or ()}
        | {("module", n.lower()) for n in modules or ()}
        | {("interface", n.lower()) for n in interfaces or ()}
    )


_FIELDS = {"line": "lines", "module": "modules", "interface": "interfaces"}


def _naming_any(impacts) -> Q:
    """The database's first pass over the other impacts: those whose item lists hold one of the names
    as text, whatever the case (a superset; `labelled` compares the items exactly after). A name
    that is not plain ASCII may be escaped in the stored JSON: then every impact passes."""
    wanted = Q(pk__in=[])
    for impact in impacts:
        for kind, name in _named(impact):
            if not name.isascii() or '"' in name or "\\" in name:
                return Q()
            wanted |= Q(**{f"{_FIELDS[kind]}__icontains": name})
    return wanted


def _named(impact) -> list[tuple[str, str]]:
    return (
        [("line", n) for n in impact.lines]
        + [("module", n) for n in impact.modules]
        + [("interface", n) for n in impact.interfaces]
    )
