"""A release artifact is checked when it is recorded, before anything is stored for it (X5, FAULTS 16).

1. An archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) is read by its directory only, never
   extracted: bounded entries, bounded total size once expanded (ARTIFACT_MAX_EXPANDED_BYTES), a
   bounded expansion ratio per entry (ARTIFACT_MAX_RATIO), no absolute paths, no `..`, no links or
   devices, and no archive inside the archive (it could not be bounded without expanding it).
2. The installers that will install it say whether they can: every environment's `apply` command
   that declares a `"dry_run"` (and, with `"product"`, installs that product) runs it once per distinct
   command, with PCC_ARTIFACT_PATH, PCC_RELEASE_VERSION and PCC_ARTIFACT_SHA256 set, simulated and
   timed (ARTIFACT_DRY_RUN_SECONDS). A non-zero exit refuses the upload with the installer's output.

An artifact held only by URL has no file here: it is recorded as it is, and its first deployment
(DEV, by the promotion order) is where it is proven; the worker checks its SHA-256 before every
deployment.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from environments.models import Environment
from environments.pipelines import spec_problems
from plant.adapters import CommandAdapter, Context

# Entries that expand to less than this are not held to the ratio: a small file of one repeated
# byte compresses far beyond any sane ratio and is harmless.
RATIO_FLOOR = 64 * 1024
NESTED_ARCHIVES = (".zip", ".jar", ".war", ".ear", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")
_DRIVE = re.compile(r"^[A-Za-z]:")
OUTPUT_SHOWN = 2000


class ArtifactRefused(ValidationError):
    def __init__(self, message: str):
        super().__init__({"artifact": message}, code="invalid")


def _refuse_name(name: str) -> None:
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise ArtifactRefused(
            _("The archive holds an absolute path (%(name)s); only relative paths.")
            % {"name": repr(name[:100])}
        )
    if ".." in path.split("/"):
        raise ArtifactRefused(
            _("The archive holds a path that climbs out of it (%(name)s).") % {"name": repr(name[:100])}
        )
    if "\x00" in path:
        raise ArtifactRefused(_("The archive holds a name with a NUL character."))
    if path.lower().endswith(NESTED_ARCHIVES):
        raise ArtifactRefused(
            _(
                "The archive holds another archive (%(name)s); its size once expanded cannot be "
                "bounded without expanding it. Ship one level of archive."
            )
            % {"name": repr(name[:100])}
        )


class _Budget:
    def __init__(self):
        self.entries = 0
        self.expanded = 0

    def add(self, name: str, size: int, compressed: int | None) -> None:
        self.entries += 1
        if self.entries > settings.ARTIFACT_MAX_ENTRIES:
            raise ArtifactRefused(
                _("The archive holds more than %(entries)s entries.")
                % {"entries": settings.ARTIFACT_MAX_ENTRIES}
            )
        self.expanded += size
        if self.expanded > settings.ARTIFACT_MAX_EXPANDED_BYTES:
            raise ArtifactRefused(
                _(
                    "The archive expands to more than %(bytes)s bytes (ARTIFACT_MAX_EXPANDED_BYTES); refused "
                    "without extracting it."
                )
                % {"bytes": f"{settings.ARTIFACT_MAX_EXPANDED_BYTES:,}"}
            )
        ratio = settings.ARTIFACT_MAX_RATIO
        if compressed is not None and size > RATIO_FLOOR and size > ratio * max(compressed, 1):
            raise ArtifactRefused(
                _(
                    "%(name)s expands %(size)s bytes from %(compressed)s (more than %(ratio)s×): a compression bomb is refused."
                )
                % {
                    "name": repr(name[:100]),
                    "size": f"{size:,}",
                    "compressed": f"{compressed:,}",
                    "ratio": ratio,
                }
            )


def _zip(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:  # reads the central directory, nothing else
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArtifactRefused(_("The zip archive cannot be read: %(error)s") % {"error": exc}) from None
    if len(infos) > settings.ARTIFACT_MAX_ENTRIES:
        raise ArtifactRefused(
            _("The archive holds more than %(entries)s entries.") % {"entries": settings.ARTIFACT_MAX_ENTRIES}
        )
    budget = _Budget()
    for info in infos:
        _refuse_name(info.filename)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise ArtifactRefused(
                _("The archive holds a symbolic link (%(name)s).") % {"name": repr(info.filename[:100])}
            )
        if mode not in (0, 0o100000, 0o040000):
            raise ArtifactRefused(
                _("The archive holds a special file (%(name)s).") % {"name": repr(info.filename[:100])}
            )
        budget.add(info.filename, info.file_size, info.compress_size)
    return {"format": "zip", "entries": budget.entries, "expanded_bytes": budget.expanded}


def _tar(path: Path) -> dict:
    budget = _Budget()
    try:
        # Streamed: each header's declared size is checked before its data is skipped.
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                _refuse_name(member.name)
                if member.issym() or member.islnk():
                    raise ArtifactRefused(
                        _("The archive holds a link (%(name)s).") % {"name": repr(member.name[:100])}
                    )
                if not (member.isfile() or member.isdir()):
                    raise ArtifactRefused(
                        _("The archive holds a special file (%(name)s).") % {"name": repr(member.name[:100])}
                    )
                budget.add(member.name, member.size, None)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactRefused(_("The tar archive cannot be read: %(error)s") % {"error": exc}) from None
    compressed = path.stat().st_size
    ratio = settings.ARTIFACT_MAX_RATIO
    if budget.expanded > RATIO_FLOOR and budget.expanded > ratio * max(compressed, 1):
        raise ArtifactRefused(
            _(
                "The archive expands %(size)s bytes from %(compressed)s (more than %(ratio)s×): a compression bomb is refused."
            )
            % {"size": f"{budget.expanded:,}", "compressed": f"{compressed:,}", "ratio": ratio}
        )
    return {"format": "tar", "entries": budget.entries, "expanded_bytes": budget.expanded}


def check_archive(path: Path) -> dict | None:
    """The archive's summary, ArtifactRefused when it breaks a bound, None when it is no archive."""
    if zipfile.is_zipfile(path):
        return _zip(path)
    try:
        is_tar = tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        is_tar = False
    return _tar(path) if is_tar else None


def dry_run_commands(product: str) -> dict[tuple, tuple[Environment, dict]]:
    """Each distinct dry-run command of the apply steps that install `product`, with the first
    environment that declares it."""
    found: dict[tuple, tuple[Environment, dict]] = {}
    for env in Environment.objects.select_related("site").order_by("site__code", "tier"):
        apply = (env.pipeline or {}).get("apply") if isinstance(env.pipeline, dict) else None
        for spec in apply if isinstance(apply, list) else [apply] if apply else []:
            if spec_problems(spec) or spec["adapter"] != "command" or "dry_run" not in spec:
                continue
            if spec.get("product", product) != product:
                continue
            found.setdefault((tuple(spec["dry_run"]), spec.get("cwd")), (env, spec))
    return found


def dry_run(path: Path, product: str, version: str, sha256: str) -> list[str]:
    """Run every installer's dry run on the artifact; ArtifactRefused with the output of the first
    that says no. Returns one line per command run."""
    done = []
    with tempfile.TemporaryDirectory(prefix="pcc-dry-run-") as folder:
        for (argv, cwd), (env, _spec) in dry_run_commands(product).items():
            ctx = Context(
                deployment_id=0,
                rfc_number="",
                site=env.site.code,
                tier=env.tier,
                version=version,
                artifact_path=str(path),
                artifact_sha256=sha256,
                migration_sql="",
                undo_sql="",
                equipment_writes=False,  # a dry run never writes to equipment (PCC_SIMULATION=1)
                work_dir=Path(folder),
            )
            result = CommandAdapter(list(argv), settings.ARTIFACT_DRY_RUN_SECONDS, cwd=cwd).run(ctx)
            command = " ".join(argv)
            if not result.ok:
                code = result.data.get("exit_code", "timeout" if "timeout" in result.data else "?")
                output = result.output.strip()[-OUTPUT_SHOWN:] or _("(no output)")
                raise ArtifactRefused(
                    _(
                        "The installer of %(environment)s refused this artifact in its dry run (%(command)s, exit %(code)s): %(output)s"
                    )
                    % {"environment": env, "command": command, "code": code, "output": output}
                )
            done.append(f"{env}: {command}")
    return done


def validate(path: Path, product: str, version: str, sha256: str) -> dict:
    """Both checks, archive first (a bomb never reaches an installer); what was checked, for the audit."""
    archive = check_archive(path)
    return {"archive": archive, "dry_runs": dry_run(path, product, version, sha256)}
