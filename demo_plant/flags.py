"""Switch a feature flag of one demo environment: ``app/flags.json``, read by the server on every request.

    python -m demo_plant.flags --env-dir var/plant/BER/PROD --flag erp_batch_confirmations --state on

The flag ``erp_batch_confirmations`` makes the MES post its ERP confirmations in batches — which, in
the demo, fail (a business signal notices; the portal turns the flag off again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from demo_plant.layout import NAME


def read_flags(app_dir: Path) -> dict[str, bool]:
    try:
        data = json.loads((app_dir / "flags.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, bool)}
        if isinstance(data, dict)
        else {}
    )


def write_flag(app_dir: Path, flag: str, on: bool) -> dict[str, bool]:
    """Set one flag, atomically (the server never reads half a file)."""
    flags = {**read_flags(app_dir), flag: on}
    tmp = app_dir / f".flags.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(flags, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, app_dir / "flags.json")
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Switch a demo environment's feature flag.")
    parser.add_argument("--env-dir", type=Path, required=True)
    parser.add_argument("--flag", required=True)
    parser.add_argument("--state", choices=("on", "off"), required=True)
    args = parser.parse_args(argv)
    app_dir = args.env_dir / "app"
    if not NAME.match(args.flag) or not app_dir.is_dir():
        print(f"flags: no such environment or bad flag name: {args.env_dir} {args.flag!r}", file=sys.stderr)
        return 2
    flags = write_flag(app_dir, args.flag, args.state == "on")
    print(f"{args.flag} {args.state} at {args.env_dir}: {json.dumps(flags, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
