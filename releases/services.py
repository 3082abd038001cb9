"""Releases and RFCs: every rule and transition, called by pages, the API and tasks alike."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from audit.services import record
from core import clock
from core.errors import StateConflict
from core.roles import Role
from environments import access
from environments import config as release_config
from environments.models import ConfigurationItem, Environment, ItemKind, ProductVersion, Site, Tier
from plant import artifacts, uploads
from releases import flags as release_flags
from releases import risk
from releases.models import Evidence, EvidenceKind, Impact, Release, Rfc, RfcCounter, UatSignoff
from releases.states import EDITABLE_STATES
from releases.versioning import ChangeClass, VersionRefused, classify, highest, major_change_gaps

FILERS = frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER, Role.ADMIN})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- Visibility -------------------------------------------------------------------------------
def visible_rfcs(user) -> QuerySet[Rfc]:
    """RFCs with at least one site the user may see; anything else is a 404."""
    return Rfc.objects.filter(rfc_visible(user))


def rfc_visible(user, rfc: str = "pk") -> Exists:
    """`visible_rfcs` as a condition on each row of a list that names its RFC in the field `rfc`
    (`"rfc"` for a deployment): asked row by row, so the database can read an ordered index and stop at
    the first rows the user may see, where `rfc__in=visible_rfcs(user)` makes it gather every one.

    An impact's site is a foreign key that cannot dangle (NOT NULL, PROTECT), so for a user who sees
    every site "an impact at a visible site" is "an impact": the same rows, and a count the planner
    answers from two indexes instead of joining the sites table into the semi-join."""
    impacts = Impact.objects.filter(rfc=OuterRef(rfc))
    site_ids = access.visible_site_ids(user)
    if site_ids is not None:
        impacts = impacts.filter(site_id__in=site_ids)
    return Exists(impacts)


def site_codes(rfcs) -> dict[int, list[str]]:
    """{RFC id: its sites' codes in order} for a page of RFCs, in one query: what a list row shows of
    the impacts, without an Impact and a Site object per row (`prefetch_related` gives the same)."""
    codes: dict[int, list[str]] = {rfc.pk: [] for rfc in rfcs}
    if codes:
        rows = (
            Impact.objects.filter(rfc_id__in=codes).order_by("site__code").values_list("rfc_id", "site__code")
        )
        for rfc_id, code in rows:
            codes[rfc_id].append(code)
    return codes


def rfc_detail_queryset(user) -> QuerySet[Rfc]:
    return (
        visible_rfcs(user)
        .select_related("release", "author")
        .prefetch_related(
            Prefetch("impacts", queryset=Impact.objects.select_related("site")),
            Prefetch("evidence", queryset=Evidence.objects.select_related("uploaded_by", "superseded_by")),
            Prefetch(
                "signoffs",
                queryset=UatSignoff.objects.select_related("site", "signed_by").prefetch_related("evidence"),
            ),
        )
    )


def rfc_or_404(user, uuid) -> Rfc:
    """The RFC with this public id if the user may see it; anything else is a 404 (never a 403)."""
    try:
        return rfc_detail_queryset(user).get(uuid=uuid)
    except (Rfc.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such RFC") from None


def target_site(user, rfc: Rfc, code: str) -> Site:
    """One of the RFC's target sites, by code, that the user may see; a clear 400 otherwise."""
    site = access.visible_site(user, code)
    if site is None or site.pk not in {s.pk for s in rfc_sites(rfc)}:
        raise ValidationError(
            {
                "site": _("%(site)s is not a target site of %(rfc)s.")
                % {"site": repr(str(code)[:20]), "rfc": rfc.number}
            }
        )
    return site


def rfc_sites(rfc: Rfc) -> list[Site]:
    return [impact.site for impact in rfc.impacts.all()]


# --- Releases -----------------------------------------------------------------------------------
def create_release(
    user,
    *,
    product: str,
    version: str,
    notes: str = "",
    artifact=None,
    artifact_url: str = "",
    artifact_sha256: str = "",
    migration_sql: str = "",
    undo_sql: str = "",
    flags: list | None = None,
    config: dict | None = None,
) -> Release:
    """A release with its artifact: an uploaded file (hashed here, once) or a URL plus checksum.

    An uploaded file is checked before the release exists (plant/artifacts.py): an archive within
    bounds, and every installer's dry run for the product says it can install it. A URL artifact has
    no file to check: it is recorded, and its first deployment (DEV, by the promotion order) proves it."""
    if not access.has_any_role(user, FILERS):
        raise PermissionDenied(_("Only developers, release managers and admins create releases."))
    if Release.objects.filter(product=product, version=version).exists():
        raise ValidationError(
            {
                "version": _("%(product)s %(version)s exists already.")
                % {"product": product, "version": version}
            }
        )
    if artifact is not None and artifact_url:
        raise ValidationError({"artifact": _("Upload a file or give a URL, not both.")})
    digest = artifact_sha256.strip().lower()
    if artifact is None:
        if artifact_url and not _SHA256.match(digest):
            raise ValidationError({"artifact_sha256": _("A URL artifact needs its SHA-256 (64 hex digits).")})
        if digest and not artifact_url:
            raise ValidationError({"artifact_url": _("A checksum without an artifact URL means nothing.")})
    release = Release(
        product=product.strip(),
        version=version.strip(),
        notes=notes,
        artifact_url=artifact_url,
        migration_sql=migration_sql,
        undo_sql=undo_sql,
        flags=release_flags.clean(flags),
        created_by=user,
        artifact_sha256=digest if artifact is None else "",
    )
    release.config = release_config.clean(config)
    release.config_sha256 = release_config.checksum(release.config)
    if release.config_only:  # the configuration is the artifact: its checksum is checked like one
        release.artifact_sha256 = release.config_sha256
    release.full_clean(exclude=["created_by"])
    stored, checked = None, None
    if artifact is not None:
        from django.conf import settings

        stored = uploads.store(artifact, "artifacts", settings.ARTIFACT_MAX_BYTES, check_type=False)
        if digest and digest != stored.sha256:
            uploads.discard("artifacts", stored.stored_name)
            raise ValidationError(
                {
                    "artifact_sha256": _(
                        "The uploaded file's SHA-256 is %(actual)s, not the %(given)s you gave: the "
                        "artifact changed on its way."
                    )
                    % {"actual": stored.sha256, "given": digest}
                }
            )
        try:  # an archive within bounds, accepted by the installers that will install it (X5)
            checked = artifacts.validate(
                uploads.path_of("artifacts", stored.stored_name),
                release.product,
                release.version,
                stored.sha256,
            )
        except BaseException:
            uploads.discard("artifacts", stored.stored_name)
            raise
        release.artifact_file, release.artifact_name = stored.stored_name, stored.original_name
        release.artifact_size, release.artifact_sha256 = stored.size, stored.sha256
    try:
        with transaction.atomic():
            release.save()
            record(
                "releases.release.created",
                release,
                actor=user,
                after={
                    "product": release.product,
                    "version": release.version,
                    "artifact_sha256": release.artifact_sha256,
                    "artifact_url": release.artifact_url,
                    "config_sha256": release.config_sha256,
                    "config_bundles": sorted(release.config),
                    "artifact_checked": checked
                    if stored
                    else "configuration only: the bundles' checksum is the artifact's"
                    if release.config_only
                    else "held by URL: not inspected here; its first deployment proves it",
                },
            )
    except BaseException:
        if stored:
            uploads.discard("artifacts", stored.stored_name)
        raise
    return release


def classify_rfc(release: Release, sites: Sequence[Site], environments=None) -> ChangeClass:
    """The class against the release's product in each target site's PROD (R5); the highest counts.

    Only the same product is compared: an ERP release against the ERP that runs in PROD, whatever
    version of MES runs beside it. A product new to a site's PROD is a new installation, counted
    from 0.0.0 as `classify` counts an empty PROD: any 1.0.0 or later is then a major change
    (downtime, operators trained), a 0.x one minor or patch. `environments`: the sites'
    environments as `site_environments` reads them for an RFC of this release (else one query).
    """
    if not sites:
        raise VersionRefused(_("Name at least one target site."))
    if environments is None:
        environments = _with_running(
            Environment.objects.filter(site__in=[s.pk for s in sites], tier=Tier.PROD), release
        )
    running = {env.site_id: env.running for env in environments if env.tier == Tier.PROD}
    no_prod = [site.code for site in sites if site.pk not in running]
    if no_prod:
        raise VersionRefused(_("%(sites)s has no PROD environment.") % {"sites": ", ".join(no_prod)})
    classes = []
    for site in sites:
        try:
            classes.append(classify(release.version, running[site.pk]))
        except VersionRefused as exc:
            raise VersionRefused(
                _("%(site)s: %(product)s %(refusal)s")
                % {"site": site.code, "product": release.product, "refusal": exc}
            ) from None
    return highest(classes)


def _with_running(environments: QuerySet, release: Release) -> QuerySet:
    """Environments annotated with the version of the release's product each runs (`running`, None
    where it is not installed)."""
    same_product = ProductVersion.objects.filter(
        environment=OuterRef("pk"), product=release.product
    ).order_by()
    return environments.annotate(running=Subquery(same_product.values("version")[:1]))


def site_environments(rfc: Rfc) -> list[Environment]:
    """Every environment of the RFC's target sites, with its site and the version of the release's
    product it runs (`running`): one query, kept on the RFC object, for all that asks on one page
    (the class, the proving tiers and their evidence, the promotion across tiers). An RFC read
    afresh (`gates.read`) reads them afresh."""
    cached = getattr(rfc, "_site_environments", None)
    if cached is None:
        sites = {i.site_id for i in rfc.impacts.all()}
        cached = list(
            _with_running(Environment.objects.filter(site_id__in=sites).select_related("site"), rfc.release)
        )
        rfc._site_environments = cached
    return cached


# --- RFCs -------------------------------------------------------------------------------------
def _next_number() -> str:
    year = clock.now().year
    RfcCounter.objects.bulk_create([RfcCounter(year=year)], ignore_conflicts=True)
    counter = RfcCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"RFC-{year}-{counter.last:04d}"


def _clean_impacts(user, impacts: Sequence[dict]) -> list[dict]:
    if not impacts:
        raise ValidationError(
            {"impacts": _("Name at least one target site with its affected lines or modules.")}
        )
    seen, cleaned = set(), []
    visible = {site.code: site for site in access.visible_sites(user)}
    for item in impacts:
        if not isinstance(item, dict) or not item.get("site"):
            raise ValidationError({"impacts": _("Each impact names its site.")})
        for key in ("lines", "modules"):
            if not isinstance(item.get(key, []), list | tuple):
                raise ValidationError({"impacts": _("%(key)s is a list of names.") % {"key": key}})
        site = item["site"] if isinstance(item["site"], Site) else visible.get(str(item["site"]))
        if site is None or site.code not in visible:
            raise ValidationError({"impacts": _("Unknown site %(site)s.") % {"site": repr(item["site"])}})
        if site.pk in seen:
            raise ValidationError({"impacts": _("%(site)s is named twice.") % {"site": site.code}})
        if not access.has_any_role(user, FILERS, site):
            raise PermissionDenied(_("You do not file changes for %(site)s.") % {"site": site.code})
        seen.add(site.pk)
        named = {
            key: [str(x).strip() for x in item.get(key, None) or [] if str(x).strip()]
            for key in ("lines", "modules", "interfaces")
        }
        _check_item_names(named)
        cleaned.append({"site": site, **_known_items(site, named), "notes": str(item.get("notes", ""))})
    return cleaned


ITEM_KINDS = {"lines": ItemKind.LINE, "modules": ItemKind.MODULE, "interfaces": ItemKind.INTERFACE}
ITEM_NAME_MAX = 100  # as a configuration item's name
ITEMS_MAX = 50  # per list of an impact


def _check_item_names(named: dict[str, list[str]]) -> None:
    """Each name of a line, module or interface on one line in at most ITEM_NAME_MAX characters, at
    most ITEMS_MAX of each kind: the names are indexed (releases.models.ImpactItem)."""
    for names in named.values():
        if len(names) > ITEMS_MAX:
            raise ValidationError(
                {
                    "impacts": _("Name at most %(count)s lines, modules or interfaces of each kind.")
                    % {"count": ITEMS_MAX}
                }
            )
        if any(len(n) > ITEM_NAME_MAX or any(ch in n for ch in "\r\n\x00") for n in names):
            raise ValidationError(
                {
                    "impacts": _(
                        "Name each production line, module or interface on one line, in at most %(count)s characters."
                    )
                    % {"count": ITEM_NAME_MAX}
                }
            )


def _known_items(site: Site, named: dict[str, list[str]]) -> dict[str, list[str]]:
    """Where a site keeps its lines, modules or interfaces as configuration items, an impact names
    only those (spelled as recorded); a site that keeps none of a kind takes free names."""
    records: dict[str, dict[str, str]] = {}
    for kind, name in ConfigurationItem.objects.filter(site=site, active=True).values_list("kind", "name"):
        records.setdefault(kind, {})[name.lower()] = name
    result = {}
    for key, names in named.items():
        known = records.get(ITEM_KINDS[key])
        if not known:
            result[key] = names
            continue
        unknown = [n for n in names if n.lower() not in known]
        if unknown:
            message = {
                "lines": _(
                    "%(unknown)s: not a production line of %(site)s. Its production lines: %(known)s."
                ),
                "modules": _("%(unknown)s: not a module of %(site)s. Its modules: %(known)s."),
                "interfaces": _("%(unknown)s: not a interface of %(site)s. Its interfaces: %(known)s."),
            }[key]
            raise ValidationError(
                {
                    "impacts": message
                    % {
                        "unknown": ", ".join(unknown),
                        "site": site.code,
                        "known": ", ".join(sorted(known.values())),
                    }
                }
            )
        result[key] = [known[n.lower()] for n in names]
    return result


def _apply_class(rfc: Rfc, sites: list[Site]) -> None:
    try:
        rfc.change_class = classify_rfc(rfc.release, sites)
    except VersionRefused as exc:
        raise ValidationError({"release": str(exc)}) from None
    if rfc.emergency and not rfc.emergency_reason.strip():
        raise ValidationError(
            {"emergency_reason": _("An emergency change says why it cannot wait for a window.")}
        )
    gaps = major_change_gaps(rfc.change_class, rfc.estimated_downtime_minutes, rfc.retraining_note)
    if gaps:
        raise ValidationError(gaps)


RFC_FIELDS = (
    "title",
    "description",
    "release",
    "estimated_downtime_minutes",
    "retraining_note",
    "rollback_plan",
    "high_risk",
    "requested_timing",
    "emergency",
    "emergency_reason",
    "dependencies",
)
MAX_DEPENDENCIES = 20


def _clean_dependencies(fields: dict) -> None:
    """The dependency names an RFC touches: trimmed, each once (whatever its case), 1–60 characters
    on one line, at most 20."""
    if "dependencies" not in fields:
        return
    names: dict[str, str] = {}
    for raw in fields["dependencies"] or []:
        name = str(raw).strip()
        if not name:
            continue
        if len(name) > 60 or any(ch in name for ch in "\r\n\x00"):
            raise ValidationError(
                {"dependencies": _("Name each dependency on one line, in at most 60 characters.")}
            )
        names.setdefault(name.casefold(), name)
    if len(names) > MAX_DEPENDENCIES:
        raise ValidationError(
            {"dependencies": _("Name at most %(count)s dependencies.") % {"count": MAX_DEPENDENCIES}}
        )
    fields["dependencies"] = list(names.values())


def create_rfc(user, *, impacts: Sequence[dict], **fields) -> Rfc:
    cleaned = _clean_impacts(user, impacts)
    _clean_dependencies(fields)
    rfc = Rfc(author=user, **{name: fields[name] for name in RFC_FIELDS if name in fields})
    _apply_class(rfc, [item["site"] for item in cleaned])
    risk.apply(rfc, len(cleaned), risk.clean(fields.get("risk_answers")))
    rfc.full_clean(exclude=["author", "number", "change_class", "release"])
    with transaction.atomic():
        rfc.number = _next_number()
        rfc.save()
        Impact.index_items(Impact.objects.bulk_create([Impact(rfc=rfc, **item) for item in cleaned]))
        rfc = rfc_detail_queryset(user).get(pk=rfc.pk)
        record("releases.rfc.created", rfc, actor=user, after=rfc.snapshot())
    return rfc


def edit_refusal(user, rfc: Rfc):
    """Why `user` may not edit `rfc` now, as the exception the service raises (None: they may)."""
    if rfc.state not in EDITABLE_STATES:
        return StateConflict(
            _("%(rfc)s is %(state)s; only a draft can be edited.")
            % {"rfc": rfc.number, "state": rfc.get_state_display().lower()}
        )
    if rfc.author_id != user.pk:
        return PermissionDenied(_("Only the author edits an RFC."))
    return None


def may_edit(user, rfc: Rfc) -> bool:
    return edit_refusal(user, rfc) is None


def update_rfc(user, rfc: Rfc, *, impacts: Sequence[dict] | None = None, **fields) -> Rfc:
    """Edit a draft. Changing the release or the sites voids the UAT sign-offs it had."""
    with transaction.atomic():
        locked = Rfc.objects.select_for_update().get(pk=rfc.pk)
        refused = edit_refusal(user, locked)
        if refused is not None:
            raise refused
        current = rfc_detail_queryset(user).get(pk=rfc.pk)
        before = current.snapshot()
        old_release_id = current.release_id
        _clean_dependencies(fields)
        for name in RFC_FIELDS:
            if name in fields:
                setattr(current, name, fields[name])
        if impacts is not None:
            cleaned = _clean_impacts(user, impacts)
            sites = [item["site"] for item in cleaned]
        else:
            cleaned, sites = None, rfc_sites(current)
        _apply_class(current, sites)
        given = None
        if fields.get("risk_answers") is not None:  # new answers join the ones given before
            given = {**(current.risk_answers or {}), **risk.clean(fields["risk_answers"])}
        risk.apply(current, len(sites), given)
        current.full_clean(exclude=["author", "number", "change_class", "release"])
        current.save()
        old_sites = {i.site_id for i in current.impacts.all()}
        if cleaned is not None:
            current.impacts.all().delete()
            Impact.index_items(Impact.objects.bulk_create([Impact(rfc=current, **item) for item in cleaned]))
        new_sites = {site.pk for site in sites}
        voided = 0
        if current.release_id != old_release_id or old_sites != new_sites:
            voided = (
                UatSignoff.objects.filter(rfc=current, voided_at__isnull=True)
                .exclude(site_id__in=new_sites, release_id=current.release_id)
                .update(voided_at=clock.now(), void_reason="The release or the target sites changed.")
            )
        current = rfc_detail_queryset(user).get(pk=rfc.pk)
        after = current.snapshot()
        if after != before:
            record(
                "releases.rfc.updated",
                current,
                actor=user,
                before=before,
                after=after,
                reason=f"{voided} UAT sign-off(s) voided" if voided else "",
            )
    return current


# --- Evidence ---------------------------------------------------------------------------------
EVIDENCE_ROLES = frozenset({Role.DEVELOPER, Role.KEY_USER, Role.RELEASE_MANAGER, Role.ADMIN})


def may_add_evidence(user, rfc: Rfc) -> bool:
    """The author, or a developer, key user, release manager or admin of one of the RFC's sites."""
    return rfc.author_id == user.pk or any(
        access.has_any_role(user, EVIDENCE_ROLES, site) for site in rfc_sites(rfc)
    )


def may_sign_off(user, rfc: Rfc, site: Site) -> bool:
    """A key user of the site who did not write the RFC (R6, R9)."""
    return rfc.author_id != user.pk and access.has_role(user, Role.KEY_USER, site)


def _require_evidence_rights(user, rfc: Rfc) -> None:
    if not may_add_evidence(user, rfc):
        raise PermissionDenied(_("You may not add evidence to this RFC."))


def _lock_draft(rfc: Rfc, refusal: str) -> Rfc:
    """The RFC locked, while it is a draft; `refusal` (marked with gettext_noop, naming %(rfc)s and
    %(state)s) says why not otherwise."""
    locked = Rfc.objects.select_for_update().get(pk=rfc.pk)
    if locked.state not in EDITABLE_STATES:
        raise StateConflict(_(refusal) % {"rfc": locked.number, "state": locked.get_state_display().lower()})
    return locked


def add_evidence(
    user, rfc: Rfc, upload, kind: str, description: str = "", supersedes: Evidence | None = None
) -> Evidence:
    if kind not in EvidenceKind.values:
        raise ValidationError(
            {"kind": _("Kind must be one of %(kinds)s.") % {"kinds": ", ".join(EvidenceKind.values)}}
        )
    _require_evidence_rights(user, rfc)
    stored = uploads.store(upload, "evidence")
    try:
        with transaction.atomic():
            locked = _lock_draft(rfc, gettext_noop("%(rfc)s is %(state)s; evidence is added only in draft."))
            evidence = Evidence.objects.create(
                rfc=locked,
                kind=kind,
                description=description[:300],
                original_name=stored.original_name,
                stored_name=stored.stored_name,
                content_type=stored.content_type,
                size=stored.size,
                sha256=stored.sha256,
                uploaded_by=user,
            )
            facts = {
                "name": evidence.original_name,
                "kind": kind,
                "sha256": evidence.sha256,
                "size": evidence.size,
            }
            if supersedes is not None:
                old = Evidence.objects.select_for_update().get(pk=supersedes.pk, rfc=locked)
                if old.superseded_by_id:
                    raise StateConflict(_("%(name)s is already superseded.") % {"name": old.original_name})
                old.superseded_by = evidence
                old.save(update_fields=["superseded_by"])
                record(
                    "releases.evidence.superseded",
                    locked,
                    actor=user,
                    before={"name": old.original_name, "sha256": old.sha256},
                    after=facts,
                )
            else:
                record("releases.evidence.added", locked, actor=user, after=facts)
    except BaseException:
        uploads.discard("evidence", stored.stored_name)
        raise
    return evidence


EVIDENCE_REMOVED_IN_DRAFT = gettext_noop("%(rfc)s is %(state)s; evidence is removed only in draft.")


def evidence_deletion_refusal(user, rfc: Rfc, evidence: Evidence, *, in_signoff: bool | None = None):
    """Why `user` may not delete `evidence` now, as the exception the service raises (None: they may).

    Only before the RFC was ever submitted; after that evidence is superseded, never deleted.
    `in_signoff` saves a query when the caller has the sign-offs' evidence at hand.
    """
    if rfc.state not in EDITABLE_STATES:
        return StateConflict(
            _(EVIDENCE_REMOVED_IN_DRAFT) % {"rfc": rfc.number, "state": rfc.get_state_display().lower()}
        )
    if rfc.submitted_at is not None:
        return StateConflict(
            _("This RFC has been submitted before: supersede the evidence instead of deleting it.")
        )
    if user.pk not in (rfc.author_id, evidence.uploaded_by_id):
        return PermissionDenied(_("Only the author or the uploader removes evidence."))
    if in_signoff if in_signoff is not None else evidence.signoffs.exists():
        return StateConflict(_("This file belongs to a UAT sign-off."))
    return None


def may_delete_evidence(user, rfc: Rfc, evidence: Evidence, *, in_signoff: bool | None = None) -> bool:
    return evidence_deletion_refusal(user, rfc, evidence, in_signoff=in_signoff) is None


def delete_evidence(user, evidence: Evidence) -> None:
    """Only before the RFC was ever submitted; after that evidence is superseded, never deleted."""
    with transaction.atomic():
        locked = _lock_draft(evidence.rfc, EVIDENCE_REMOVED_IN_DRAFT)
        refused = evidence_deletion_refusal(user, locked, evidence)
        if refused is not None:
            raise refused
        record(
            "releases.evidence.deleted",
            locked,
            actor=user,
            before={"name": evidence.original_name, "sha256": evidence.sha256},
        )
        stored_name = evidence.stored_name
        evidence.delete()
        transaction.on_commit(lambda: uploads.discard("evidence", stored_name))


# --- UAT sign-off -----------------------------------------------------------------------------
def sign_off_uat(
    user, rfc: Rfc, site: Site, comment: str, files: Sequence, *, ready=None, cite: Sequence = ()
) -> UatSignoff:
    """A key user of the site signs off UAT with a comment and at least one piece of evidence (R6):
    files uploaded with the sign-off, or evidence already attached to the RFC that it cites.
    `ready(locked_rfc)` raises when a higher layer's rule refuses (the workflow: promotion, X5); it is
    asked after who, where and what, with the RFC locked."""
    if rfc.author_id == user.pk:
        raise PermissionDenied(_("The author cannot sign off their own RFC."))
    if not may_sign_off(user, rfc, site):
        raise PermissionDenied(_("Only a key user of %(site)s signs off its UAT.") % {"site": site.code})
    if site.pk not in {s.pk for s in rfc_sites(rfc)}:
        raise ValidationError(
            {"site": _("%(site)s is not a target of %(rfc)s.") % {"site": site.code, "rfc": rfc.number}}
        )
    if not comment or not comment.strip():
        raise ValidationError({"comment": _("Say what you tested and what you saw.")})
    cite = list(cite)
    if any(e.rfc_id != rfc.pk or e.superseded_by_id is not None for e in cite):
        raise ValidationError({"cite": _("Cite only the RFC's own current evidence.")})
    if not files and not cite:
        raise ValidationError(
            {
                "files": _(
                    "Attach at least one evidence file (screenshot, log or report), or cite one already "
                    "attached."
                )
            }
        )
    stored = []
    try:
        for upload in files:
            stored.append(uploads.store(upload, "evidence"))
        with transaction.atomic():
            locked = _lock_draft(rfc, gettext_noop("%(rfc)s is %(state)s; UAT is signed off only in draft."))
            if ready is not None:
                ready(locked)
            # A key user's newer sign-off replaces their own; another key user's stands beside it (a
            # high-risk change needs two, releases/risk.py).
            UatSignoff.objects.filter(rfc=locked, site=site, signed_by=user, voided_at__isnull=True).update(
                voided_at=clock.now(), void_reason="Replaced by a newer sign-off."
            )
            signoff = UatSignoff.objects.create(
                rfc=locked,
                site=site,
                release=locked.release,
                signed_by=user,
                signed_at=clock.now(),
                comment=comment.strip(),
            )
            for cited in cite:
                signoff.evidence.add(cited)
            for item in stored:
                signoff.evidence.add(
                    Evidence.objects.create(
                        rfc=locked,
                        kind=EvidenceKind.SIGNOFF,
                        description=f"UAT sign-off {site.code}",
                        original_name=item.original_name,
                        stored_name=item.stored_name,
                        content_type=item.content_type,
                        size=item.size,
                        sha256=item.sha256,
                        uploaded_by=user,
                    )
                )
            record(
                "releases.rfc.uat_signed_off",
                locked,
                actor=user,
                after={
                    "site": site.code,
                    "release": str(locked.release),
                    "comment": signoff.comment,
                    "evidence": [{"name": s.original_name, "sha256": s.sha256} for s in stored],
                    **(
                        {"cited": [{"name": e.original_name, "sha256": e.sha256} for e in cite]}
                        if cite
                        else {}
                    ),
                },
            )
    except BaseException:
        for item in stored:
            uploads.discard("evidence", item.stored_name)
        raise
    return signoff
