"""The rollout page of a release (E10): its rings, each site's state and version, the next allowed
start, and (for release managers) the rings and soak times to change."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from core import clock
from core.refusals import REFUSED, refusal
from deployments.scheduling import may_schedule
from environments.models import RolloutRing, Site
from releases.models import Release
from workflow import rollout

RING_CHOICES = list(range(rollout.MAX_RINGS))


def _rings_from(post, sites: list[Site]) -> list[tuple[int, list[Site]]]:
    """The rings a release manager typed: one ring select per site, one soak per ring (minutes)."""
    rings: list[tuple[int, list[Site]]] = []
    for position in RING_CHOICES:
        raw = (post.get(f"soak_{position}") or "0").strip()
        if not raw.isdigit() or len(raw) > 7:
            raise ValidationError(
                {"soak": _("Ring %(ring)s: give the soak time in whole minutes.") % {"ring": position}}
            )
        rings.append((int(raw), []))
    for site in sites:
        choice = post.get(f"ring_{site.pk}", "")
        if choice == "":
            continue
        if choice not in {str(p) for p in RING_CHOICES}:
            raise ValidationError(
                {
                    "rings": _("%(site)s: choose a ring from 0 to %(last)s.")
                    % {"site": site.code, "last": rollout.MAX_RINGS - 1}
                }
            )
        rings[int(choice)][1].append(site)
    return rings


def _local(moment, zone) -> str:
    return f"{moment.astimezone(zone):%a %d %b %H:%M %Z}" if moment else ""


def _rows(rollout_status: rollout.Rollout, now) -> list[dict]:
    """Each ring with its sites, the times in each site's own zone."""
    rows = []
    for ring in rollout_status.rings:
        sites = []
        for entry in ring.sites:
            zone, d = entry.site.zone, entry.deployment
            when = ""
            if d is not None and entry.state in ("scheduled", "running"):
                when = _local(d.scheduled_start, zone)
            elif d is not None:
                when = _local(d.finished_at or d.scheduled_end, zone)
            elif ring.next_start and ring.next_start > now:
                when = _("not before %(start)s") % {"start": _local(ring.next_start, zone)}
            sites.append({"entry": entry, "when": when})
        done = not ring.problems
        rows.append({"ring": ring, "sites": sites, "done": done, "soaked": done and ring.soaked_at <= now})
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def rollout_page(request, uuid):
    release = get_object_or_404(Release, uuid=uuid)
    sites = list(Site.objects.order_by("code"))
    may_plan = any(may_schedule(request.user, site) for site in sites)
    error, status = "", 200
    if request.method == "POST":
        if not may_plan:
            error, status = _("Only a release manager or an admin plans a rollout."), 403
        else:
            try:
                if request.POST.get("action") == "reset":
                    rollout.reset_plan(request.user, release)
                    messages.success(
                        request,
                        _("The rollout of %(release)s follows the sites' risk tiers again.")
                        % {"release": release},
                    )
                else:
                    rollout.save_plan(request.user, release, _rings_from(request.POST, sites))
                    messages.success(request, _("Rollout rings of %(release)s saved.") % {"release": release})
                return redirect("releases:rollout", uuid=release.uuid)
            except REFUSED as exc:
                found = refusal(exc)
                error, status = found.message, found.status
    current = rollout.status(release)
    placed = {s.site.pk: ring.position for ring in current.rings for s in ring.sites}
    soaks = {ring.position: ring.soak_minutes for ring in current.rings}
    return render(
        request,
        "releases/rollout.html",
        {
            "release": release,
            "rollout": current,
            "rows": _rows(current, clock.now()),
            "now": clock.now(),
            "may_plan": may_plan,
            "error": error,
            "plan_sites": [
                {"site": site, "ring": placed.get(site.pk), "tier": RolloutRing(site.rollout_ring).label}
                for site in sites
            ],
            "ring_choices": RING_CHOICES,
            "soaks": [
                (p, soaks.get(p, current.rings[-1].soak_minutes if current.rings else 0))
                for p in RING_CHOICES
            ],
        },
        status=status,
    )
