"""Drive the car: by hand from the web page (or a gamepad), recording tubs, or by a model.

    tubcar drive --config car.toml                   # the real car (Pi camera, PCA9685)
    tubcar drive --config car.toml --model models/x  # with a pilot for the autopilot modes
    tubcar drive --sim --track 3 --model models/x    # the same loop on the simulator

Open the printed URL (or scan the QR code) on a phone; it carries the car's control token.
The page is served on every network the car is on (0.0.0.0) unless --host (or [web] host)
says otherwise: anyone on those networks can load it, only the token lets them drive.
Ctrl-C or SIGTERM stops the loop with the throttle at neutral; the loop's timing per part
is printed on exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
from pathlib import Path

from car.config import ConfigError, load_config
from car.contracts import Reports
from car.controller.web import WebController
from car.loop import LoopFault, format_stats


def lan_address() -> str | None:
    """This machine's address on the local network (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.254.254.254", 1))
            return probe.getsockname()[0]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar drive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="the car's TOML file (default: all defaults)")
    parser.add_argument("--model", type=Path, help="model bundle folder (pilot.tflite + model.json)")
    parser.add_argument("--sim", action="store_true", help="drive the simulator instead of the hardware")
    parser.add_argument("--track", type=int, default=1, help="simulator track seed (with --sim)")
    parser.add_argument(
        "--preset",
        default="mixed",
        choices=("mixed", "warehouse"),
        help="kind of simulated track (with --sim)",
    )
    parser.add_argument(
        "--host", help="web controller address (overrides the config; 127.0.0.1 = this machine only)"
    )
    parser.add_argument("--port", type=int, help="web controller port (overrides the config; 0 = any free)")
    parser.add_argument("--tub-dir", type=Path, help="where recorded tubs go (overrides the config)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--stats-json", type=Path, help="write the loop stats and final command here on exit")
    parser.add_argument("--no-qr", action="store_true", help="do not print the QR code")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    if args.host is not None:
        config.web.host = args.host
    if args.port is not None:
        config.web.port = args.port
    if args.tub_dir is not None:
        config.recording.tub_dir = str(args.tub_dir)

    try:
        if args.sim:
            from sim.car import simulated_car
            from sim.parts import make_simulation

            camera = config.camera
            simulation = make_simulation(
                args.track,
                config.loop.rate_hz,
                camera.width,
                camera.height,
                preset=args.preset,
                config=config,
            )
            car = simulated_car(config, simulation, model_dir=args.model)
        else:
            from car.vehicle import build_car

            car = build_car(config, model_dir=args.model)
    except (ValueError, RuntimeError, OSError) as err:  # BundleError is a ValueError
        print(f"cannot build the car: {err}", file=sys.stderr)
        return 2

    def stop(signum, _frame):
        car.loop.stop(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    try:
        car.start()
    except RuntimeError as err:
        print(f"cannot start the car: {err}", file=sys.stderr)
        return 2
    where = f"simulator track {args.track}" if args.sim else "hardware"
    print(
        f"driving {config.name} on the {where} at {config.loop.rate_hz:g} Hz"
        f"{', pilot ' + car.pilot.card.architecture if car.pilot else ', no pilot'}",
        flush=True,
    )
    if car.url:
        everywhere = config.web.host in ("0.0.0.0", "::", "")
        address = lan_address() if everywhere else None
        phone_url = (
            car.controller.url(address) if address and isinstance(car.controller, WebController) else car.url
        )
        print(f"control page: {car.url}", flush=True)
        if address:
            print(f"         LAN: {phone_url}", flush=True)
        if not args.no_qr:
            import segno

            segno.make(phone_url, error="l").terminal(compact=True)
    code = 0
    try:
        car.loop.run(duration_s=args.duration)
    except LoopFault as err:
        print(f"stopped by a fault: {err}", file=sys.stderr)
        code = 1
    stats = car.loop.stats()
    print(format_stats(stats))
    if car.recorder.path is not None:
        print(f"recorded {car.recorder.records} records to {car.recorder.path}")
    if car.recorder.error is not None:
        print(f"recording stopped early: {car.recorder.error}", file=sys.stderr)
    final = car.actuator.last_command
    print(f"actuator left at angle {final[0]:g}, throttle {final[1]:g}")
    if args.stats_json:
        args.stats_json.write_text(
            json.dumps(
                {
                    "loop": stats,
                    "final_command": final,
                    "records": car.recorder.records,
                    "tub": str(car.recorder.path) if car.recorder.path else None,
                    "sim": car.actuator.status() if isinstance(car.actuator, Reports) else None,
                },
                indent=2,
            )
        )
    return code
