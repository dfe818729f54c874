"""Find your car's steering and throttle pulse widths, and write them into its config.

    tubcar calibrate --config car.toml steering
    tubcar calibrate --config car.toml throttle     # WHEELS OFF THE GROUND

Type `+10` / `-10` (or any step) to nudge the pulse, a number such as `1520` to set it,
then `left`, `centre`, `right` (steering) or `reverse`, `neutral`, `forward` (throttle)
to mark the current pulse; `save` writes the marks into the config (comments kept),
`quit` leaves with the channel back at its centre/neutral pulse.
Runs on the Pi: it talks to the PCA9685 through I2C. `--dry-run` runs the same dialogue
anywhere, against a pretend PCA9685 (`car.fake_i2c`): it prints the register writes the
chip would get and saves nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from car.actuator import I2CBus, PwmBoard, open_i2c_bus
from car.calibration import Calibrator, write_calibration
from car.config import ConfigError, load_config
from car.fake_i2c import FakePCA9685Bus


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", choices=("steering", "throttle"))
    parser.add_argument("--config", type=Path, required=True, help="the car's TOML file (created if missing)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="no hardware: a pretend PCA9685, its register writes shown, nothing saved",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config if args.config.exists() else None)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    section = getattr(config, args.target)
    start_us = section.centre_us if args.target == "steering" else section.neutral_us
    address = section.i2c_address if section.i2c_address is not None else config.pwm.i2c_address
    frequency = section.frequency_hz or config.pwm.frequency_hz
    bus: I2CBus = FakePCA9685Bus(address) if args.dry_run else open_i2c_bus()
    board = PwmBoard(bus, address, frequency, config.pwm.reference_clock_hz)
    calibrator = Calibrator(board, section.channel, start_us, args.target)
    show_writes = _write_printer(bus)
    if args.dry_run:
        print("dry run: a pretend PCA9685, no hardware; the config is not changed")
        show_writes()
    elif args.target == "throttle":
        print("!! lift the driven wheels off the ground: the motor will turn !!")
    print(
        f"PCA9685 0x{address:02x} channel {section.channel} at {board.frequency_hz:.1f} Hz, "
        f"pulse {start_us:.0f} us\n{calibrator.help}"
    )
    try:
        while True:
            try:
                command = input(f"{args.target} {calibrator.pulse_us:.0f} us> ").strip()
            except EOFError:
                command = "quit"
            if command in ("quit", "q", "exit"):
                break
            if command == "save" and args.dry_run:
                print(f"dry run: would write {_marks(calibrator.marks)} to [{args.target}] in {args.config}")
                continue
            if command == "save":
                try:
                    write_calibration(args.config, args.target, calibrator.marks)
                    print(f"wrote {sorted(calibrator.marks)} to [{args.target}] in {args.config}")
                except ConfigError as err:
                    print(f"not saved: {err}")
                continue
            try:
                print(calibrator.apply(command))
            except ValueError as err:
                print(err)
            show_writes()
    finally:
        rest = calibrator.marks.get("centre_us" if args.target == "steering" else "neutral_us", start_us)
        board.set_pulse(section.channel, rest)
        show_writes()
        print(f"channel {section.channel} left at {rest:.0f} us")
    return 0


def _write_printer(bus: object):
    """A function printing the register writes since its last call (a pretend bus only)."""
    if not isinstance(bus, FakePCA9685Bus):
        return lambda: None
    shown = 0

    def show() -> None:
        nonlocal shown
        for write in bus.writes[shown:]:
            print(f"  PCA9685 0x{bus.address:02x}: {bus.describe(write)}")
        shown = len(bus.writes)

    return show


def _marks(marks: dict[str, float]) -> str:
    return ", ".join(f"{key} = {value:.0f}" for key, value in sorted(marks.items())) or "no marks"
