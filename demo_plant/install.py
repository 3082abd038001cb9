"""The demo plant's "apply" command: install a release artifact into an application directory.

    PCC_ARTIFACT_PATH=mes-2.4.1.json [PCC_ARTIFACT_SHA256=...] python -m demo_plant.install --app-dir DIR
    PCC_ARTIFACT_PATH=mes-2.4.1.json [PCC_RELEASE_VERSION=2.4.1] python -m demo_plant.install --check

The artifact is a JSON file {"product": "MES", "version", "label_delay_ms", "broken"}, or a .zip
that holds such a ``release.json``. Exit codes: 0 installed, 1 ``--fail`` (nothing changed),
2 artifact or app directory missing or unreadable, 3 checksum mismatch (nothing changed).
Each install is counted in the environment's ledger (demo_plant/ledger.py, beside the app directory).

``--check`` is the dry run the portal asks when an artifact is recorded: it reads and validates
the artifact, checks its version is $PCC_RELEASE_VERSION when that is set, and changes nothing;
exit 0 (installable) or 2 (not, with the reason on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

from demo_plant import ledger
from demo_plant.layout import validate_release, write_release


class InstallError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_artifact(path: Path) -> dict:
    """The release inside the artifact, validated; InstallError(code 2) when it cannot be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "release.json"]
                if not names:
                    raise InstallError(f"{path} holds no release.json", 2)
                data = json.loads(archive.read(min(names, key=len)))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("product", "MES") != "MES":
            raise InstallError(f"{path} is a {data.get('product')!r} artifact, not MES", 2)
        return validate_release(data)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InstallError(f"artifact {path} is unreadable: {exc}", 2) from exc


def install(app_dir: Path, artifact: Path, expected_sha256: str | None) -> str:
    if not artifact.is_file():
        raise InstallError(f"artifact not found: {artifact}", 2)
    if not app_dir.is_dir():
        raise InstallError(f"app directory not found: {app_dir}", 2)
    if expected_sha256:
        actual = sha256_of(artifact)
        if actual != expected_sha256.strip().lower():
            raise InstallError(
                f"checksum mismatch for {artifact}: expected {expected_sha256.strip()}, "
                f"got {actual}; nothing installed",
                3,
            )
    release = read_artifact(artifact)
    try:
        previous = json.loads((app_dir / "release.json").read_text(encoding="utf-8")).get("version", "?")
    except (OSError, ValueError, AttributeError):
        previous = "none"
    write_release(app_dir, release)
    ledger.record(app_dir.parent, "install", version=release["version"])
    return (
        f"installed MES {release['version']} into {app_dir} (was {previous}); "
        f"label_delay_ms={release['label_delay_ms']} broken={str(release['broken']).lower()}"
    )


def check(artifact: Path, expected_version: str | None) -> str:
    """The dry run: the artifact is one this installer can install, as `version`; nothing changes."""
    if not artifact.is_file():
        raise InstallError(f"artifact not found: {artifact}", 2)
    release = read_artifact(artifact)
    if expected_version and release["version"] != expected_version.strip():
        raise InstallError(
            f"artifact {artifact.name} holds MES {release['version']}, not the release's {expected_version.strip()}",
            2,
        )
    return f"artifact OK: MES {release['version']} (label_delay_ms={release['label_delay_ms']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the artifact in $PCC_ARTIFACT_PATH.")
    parser.add_argument("--app-dir", type=Path)
    parser.add_argument("--check", action="store_true", help="only read and validate the artifact")
    parser.add_argument("--fail", action="store_true", help="fail on purpose (for tests), changing nothing")
    args = parser.parse_args(argv)
    if not args.check and args.app_dir is None:
        parser.error("--app-dir is required (unless --check)")
    if args.fail:
        print("install failed on purpose", file=sys.stderr)
        return 1
    artifact = os.environ.get("PCC_ARTIFACT_PATH")
    try:
        if not artifact:
            raise InstallError("PCC_ARTIFACT_PATH is not set", 2)
        if args.check:
            print(check(Path(artifact), os.environ.get("PCC_RELEASE_VERSION")))
        else:
            print(install(args.app_dir, Path(artifact), os.environ.get("PCC_ARTIFACT_SHA256")))
    except InstallError as exc:
        print(f"install: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
