"""Measure a real car's camera, track and steering from one of its tubs.

  tubcar calibrate-camera --tub data/tub_1 [--json] [--white-tape-m 0.048] [--wheelbase-m 0.26]

Prints the lens (k1, k2), the camera's field of view, pitch and height, the lane and tape
widths, how far one unit of steering turns the car, the floor's colour, streaks and
exposure, and a `[camera]` / `[steering]` snippet for the car's config. How each number
is measured: sim/calibrate.py. The tub needs >= 1.5 laps with some straights (the driver
holding angle 0 for >= 12 frames). Metres rest on one known width: the white tape's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from car import channels


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar calibrate-camera",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tub", type=Path, required=True, help="a tub recorded by the car, driven by a person"
    )
    parser.add_argument("--white-tape-m", type=float, default=0.048, help="width of the white edge tape (m)")
    parser.add_argument(
        "--wheelbase-m", type=float, default=None, help="the car's wheelbase (default: the config's)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from car.config import SteeringConfig
    from car.tub import Tub, TubError
    from sim.calibrate import calibrate

    try:
        tub = Tub(args.tub)
        records = list(tub.records())
        if not records:
            raise TubError(f"{args.tub}: the tub has no readable records")
        frames = np.stack([tub.load_image(record) for record in records])
        angles = np.array([float(record[channels.USER_ANGLE]) for record in records])
        result = calibrate(
            frames,
            angles,
            white_tape_m=args.white_tape_m,
            progress=lambda step: print(f"measuring {step} ...", file=sys.stderr),
        )
    except (TubError, ValueError, KeyError) as err:
        print(f"tubcar calibrate-camera: {err}", file=sys.stderr)
        return 2
    wheelbase = args.wheelbase_m or SteeringConfig().wheelbase_m
    report = {
        **result.to_dict(),
        "wheelbase_m": wheelbase,
        "max_wheel_angle_deg": round(result.max_wheel_angle_deg(wheelbase), 2),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    for key, value in report.items():
        print(f"{key:>22}: {value}")
    print(
        "\n# for the car's config (car.toml):\n[camera]\n"
        f"height_m = {result.height_m}\npitch_deg = {result.pitch_deg}\nfov_deg = {result.fov_deg}\n"
        f"k1 = {result.k1}\nk2 = {result.k2}\n\n[steering]\n"
        f"wheelbase_m = {wheelbase}\nmax_wheel_angle_deg = {report['max_wheel_angle_deg']}"
    )
    return 0
