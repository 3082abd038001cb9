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

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from deployments.models import Deployment
from deployments.states import ACTIVE
from environments.models import ItemKind
from releases.models import Impact, item_keys

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
    the items they share and their booked or running deployments at that site. Two queries: the
    shown RFCs' matching items through the item index (`releases.models.ImpactItem`, ranked by RFC
    number per site in the database) with the columns of each RFC the page shows (any other is read
    on access), and their deployments. With `limit`, at most that many per site (by number);
    `left_out` gets how many more each site has."""
    from releases.models import Rfc

    mine = {i.site_id: i for i in impacts}
    keys = {site_id: _keys(i.lines, i.modules, i.interfaces) for site_id, i in mine.items()}
    if not any(keys.values()):
        return {}
    kept: dict[int, list[tuple[int, set]]] = {}
    rfcs: dict[int, Rfc] = {}
    as_uuid = Rfc._meta.get_field("uuid").to_python  # a UUID on PostgreSQL, its hex on SQLite
    for site_id, rfc_id, kind, key, total, *shown in _ranked_items(rfc, keys, limit):
        entries = kept.setdefault(site_id, [])
        if not entries or entries[-1][0] != rfc_id:
            entries.append((rfc_id, set()))
            if limit is not None and left_out is not None and total > limit:
                left_out[site_id] = total - limit
            if rfc_id not in rfcs:
                uuid, number, title, state = shown
                rfcs[rfc_id] = Rfc.from_db(
                    connection.alias, _SHOWN, [rfc_id, as_uuid(uuid), number, title, state]
                )
        entries[-1][1].add((kind, key))
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


# Each matching item of the other open RFCs, the RFCs ranked by number per site (dense: an RFC's items
# share its rank), the count of RFCs per site beside each row; only the rows of the first `limit`, with
# what the page shows of their RFCs (read for those rows alone: the ranking reads the index, not RFCs).
_RANKED = """
    WITH hits (site_id, rfc_id, number, kind, item_key) AS ({hits}),
    ranked AS (
        SELECT hits.*, dense_rank() OVER (PARTITION BY site_id ORDER BY number) AS place FROM hits
    ),
    counted AS (SELECT ranked.*, max(place) OVER (PARTITION BY site_id) AS total FROM ranked)
    SELECT c.site_id, c.rfc_id, c.kind, c.item_key, c.total, r.uuid, r.number, r.title, r.state
    FROM counted c JOIN {rfcs} r ON r.id = c.rfc_id
    WHERE c.place <= %s ORDER BY c.number, c.site_id, c.kind, c.item_key"""


_SHOWN = ["id", "uuid", "number", "title", "state"]  # of each neighbour, what the RFC page shows


def _ranked_items(rfc, keys: dict[int, set], limit: int | None) -> list[tuple]:
    """(site id, RFC id, kind, key, RFC count at the site, the RFC's uuid, number, title, state) for the
    items the first `limit` other open RFCs per site share with `keys`, in RFC number order."""
    from releases.models import ImpactItem, Rfc
    from releases.states import OPEN_STATES

    wanted = Q(pk__in=[])
    for site_id, site_keys in keys.items():
        for kind in sorted({kind for kind, _ in site_keys}):
            names = sorted(name for k, name in site_keys if k == kind)
            wanted |= Q(site_id=site_id, kind=kind, key__in=names)
    hits, params = (
        ImpactItem.objects.filter(wanted, rfc__state__in=OPEN_STATES)
        .exclude(rfc_id=rfc.pk)
        .values_list("site_id", "rfc_id", "rfc__number", "kind", "key")
        .order_by()
        .query.sql_with_params()
    )
    # The hits query is Django's, its values bound parameters; the rest is the constant above.
    with connection.cursor() as cursor:
        cursor.execute(
            _RANKED.format(hits=hits, rfcs=connection.ops.quote_name(Rfc._meta.db_table)),
            (*params, limit if limit is not None else 2**31 - 1),
        )
        return cursor.fetchall()


_keys = item_keys  # the items an impact names, as `labelled` keys them (kind, name in lower case)


def _named(impact) -> list[tuple[str, str]]:
    return (
        [("line", n) for n in impact.lines]
        + [("module", n) for n in impact.modules]
        + [("interface", n) for n in impact.interfaces]
    )
