"""Push a recipe to the line PLC — or, under simulation, only say so (E5).

    [PCC_SIMULATION=1] python -m demo_plant.equipment --env-dir DIR --recipe NAME [--revert]

``--revert`` pushes the recipe that ran before back (the rollback's undo of the push).

The portal decides whether an environment may write to equipment (only PROD) and passes
``PCC_SIMULATION=1`` otherwise; then nothing is written. Every push and revert, simulated or not, is
counted in the environment's ledger (demo_plant/ledger.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from demo_plant import ledger


def push_recipe(env_dir: Path, recipe: str, simulation: bool, revert: bool = False) -> str:
    what = f"the recipe before {recipe}" if revert else f"recipe {recipe}"
    ledger.record(env_dir, "revert" if revert else "push", recipe=recipe, simulated=simulation)
    if simulation:
        return f"SIMULATED: would push {what} to the line PLC"
    with (env_dir / "equipment.log").open("a", encoding="utf-8") as log:
        log.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} pushed {what}\n")
    return f"pushed {what} to the line PLC ({env_dir / 'equipment.log'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Push a recipe to the line PLC.")
    parser.add_argument("--env-dir", type=Path, required=True)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--revert", action="store_true", help="push the previous recipe back")
    args = parser.parse_args(argv)
    if not args.env_dir.is_dir():
        print(f"equipment: environment directory not found: {args.env_dir}", file=sys.stderr)
        return 2
    print(push_recipe(args.env_dir, args.recipe, os.environ.get("PCC_SIMULATION") == "1", args.revert))
    return 0


if __name__ == "__main__":
    sys.exit(main())
