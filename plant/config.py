"""The configuration an environment actually has (issue 19 item 2): a folder of JSON files, one per
bundle (the pipeline's ``"config": {"adapter": "config_dir", "path": …}``), read for drift and written
by a deployment — the bundles the release carries, each file replaced whole, the files as they were
kept in the deployment's work folder so a rollback puts them back.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from environments import config as release_config


class ConfigError(Exception):
    pass


def folder_of(environment) -> Path | None:
    spec = (environment.pipeline or {}).get("config") or {}
    return Path(spec["path"]) if spec.get("path") else None


def read(folder: Path) -> dict:
    """{bundle: {key: value}} as found in the folder (an unreadable file is an error, not a gap)."""
    found = {}
    if not folder.is_dir():
        return found
    for file in sorted(folder.glob("*.json")):
        try:
            found[file.stem] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{file.name} unreadable: {exc}") from None
    try:
        return release_config.clean(found)
    except Exception as exc:  # ValidationError: a hand-edited file that is not a flat bundle
        raise ConfigError(f"{folder}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}") from None


def present(environment) -> dict | None:
    """The environment's configuration now (None: it declares no configuration folder)."""
    folder = folder_of(environment)
    return None if folder is None else read(folder)


def write(folder: Path, bundles: dict, keep: Path) -> list[str]:
    """Write each bundle's file; the files it replaces (or their absence) are kept in `keep` first —
    once: a step run again keeps the first copy, the one from before the deployment."""
    folder.mkdir(parents=True, exist_ok=True)
    if not keep.exists():
        keep.mkdir(parents=True)
        absent = []
        for name in bundles:
            source = folder / f"{name}.json"
            if source.exists():
                shutil.copy2(source, keep / source.name)
            else:
                absent.append(name)
        (keep / ".absent").write_text(json.dumps(absent), encoding="utf-8")
    written = []
    for name, settings in bundles.items():
        tmp = folder / f".{name}.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, folder / f"{name}.json")
        written.append(name)
    return written


def restore(folder: Path, keep: Path) -> list[str]:
    """Put back the files `write` replaced; remove the bundles that did not exist before."""
    if not keep.is_dir():
        raise ConfigError(f"nothing kept in {keep}: the configuration was not written by this deployment")
    restored = []
    for file in keep.glob("*.json"):
        shutil.copy2(file, folder / file.name)
        restored.append(file.stem)
    for name in json.loads((keep / ".absent").read_text(encoding="utf-8")):
        (folder / f"{name}.json").unlink(missing_ok=True)
        restored.append(name)
    return sorted(restored)
