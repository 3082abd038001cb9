"""Write the demo release artifacts: one good, one that fails the smoke test, one too slow, and one
that passes the smoke test but stops confirming production to the ERP (a business signal catches it).

    python -m demo_plant.artifacts --out DIR

Prints ``<sha256>  <path>`` per artifact, the checksum the portal records at upload (X5).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from demo_plant.install import sha256_of

# Baseline 2.3.1 prints a label in 20 ms; "slow" is 10x that, far past the 20% limit (X3).
RELEASES = {
    "good": {"product": "MES", "version": "2.4.1", "label_delay_ms": 60, "broken": False},
    "bad": {"product": "MES", "version": "2.4.2", "label_delay_ms": 60, "broken": True},
    "slow": {"product": "MES", "version": "2.4.3", "label_delay_ms": 600, "broken": False},
    "unconfirmed": {
        "product": "MES",
        "version": "2.4.6",
        "label_delay_ms": 60,
        "broken": False,
        "confirmations_broken": True,
    },
}


def build(out_dir: str | Path) -> dict[str, Path]:
    """Write the artifacts (byte-identical on every run) and return {"good"|"bad"|"slow"|"unconfirmed": path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, release in RELEASES.items():
        path = out / f"mes-{release['version']}.json"
        path.write_text(json.dumps(release, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths[kind] = path
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the demo MES release artifacts.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for path in build(args.out).values():
        print(f"{sha256_of(path)}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
