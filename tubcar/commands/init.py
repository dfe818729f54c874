"""Make a car folder (Donkeycar's `createcar`): its config with every setting commented,
and its data/ and models/ folders.

    tubcar init mycar            # then: cd mycar && tubcar calibrate --config car.toml steering

An existing car.toml is never overwritten: it is checked, and kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from car.car_folder import create_car_folder
from car.config import ConfigError


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar init", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="the car's folder (made if missing)")
    parser.add_argument("--name", help="the car's name in its config (default: the folder's name)")
    args = parser.parse_args(argv)
    try:
        folder = create_car_folder(args.folder, args.name)
    except ConfigError as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    if folder.config_created:
        print(f"wrote {folder.config} (every setting, with its default and a comment)")
    else:
        print(f"kept {folder.config}: an existing config is never overwritten")
    for name in ("data", "models"):
        made = "made" if name in folder.folders_created else "kept"
        print(f"{made} {folder.path / name}/")
    print(
        "next:\n"
        f"  cd {folder.path}\n"
        "  tubcar calibrate --config car.toml steering      # then throttle, wheels off the ground\n"
        "  tubcar drive --config car.toml                   # open the printed URL on your phone"
    )
    return 0
