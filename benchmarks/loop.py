"""Drive loop timing: `tubcar bench loop [--ticks 2000] [--model DIR] --json`.

The car's own loop, built by `build_car` in real time at 20 Hz: the simulator's camera,
a scripted controller holding `local` mode with recording on (in place of the phone),
the TFLite pilot (run on every frame), the mixer, the throttle limiter, the failsafe,
the tub recorder (JPEG + JSON for every tick) and the simulator's actuator. Reports
overruns (goal 0), the p99 of |actual period - target period| (goal <= 2 ms) and each
part's p50/p99/max. Without --model it exports the untrained `fast` network: the same
architecture, so the same latency, as a trained one.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import threading
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticks", type=int, default=2000, help="loop ticks to run (2000 at 20 Hz = 100 s)")
    parser.add_argument("--rate", type=float, default=20.0, help="loop rate, Hz")
    parser.add_argument("--model", type=Path, help="model bundle; default: export the untrained `fast` model")
    parser.add_argument("--track", type=int, default=1, help="simulator track seed")


def build_bench_car(model: Path, tub_dir: Path, rate_hz: float, track: int):
    """The car under test: `build_car` on the simulator, driven by the pilot, recording."""
    from car import channels as ch
    from car.bundle import load_card
    from car.config import CarConfig
    from car.controller.scripted import Command, ScriptedController
    from sim.car import simulated_car
    from sim.parts import make_simulation

    spec = load_card(model).input
    config = CarConfig()
    config.name = "bench"
    config.loop.rate_hz = rate_hz
    config.camera.width, config.camera.height = spec.source_width, spec.source_height
    config.recording.tub_dir = str(tub_dir)
    config.recording.in_autopilot = True
    sim = make_simulation(track, rate_hz, spec.source_width, spec.source_height)
    controller = ScriptedController(
        Command(mode=ch.MODE_LOCAL, recording=True), throttle_cap=config.pilot.throttle_cap
    )
    return simulated_car(config, sim, controller=controller, model_dir=model)


def _progress(loop, ticks: int, done: threading.Event) -> None:
    from tqdm import tqdm

    with tqdm(total=ticks, unit="tick", desc="loop", leave=False) as bar:
        while not done.wait(0.5):
            bar.update(loop.ticks - bar.n)
        bar.update(loop.ticks - bar.n)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
        scratch = Path(folder)
        if args.model is None:
            from benchmarks.infer import untrained_bundle

            with contextlib.redirect_stdout(sys.stderr):  # TensorFlow's export chatter would spoil --json
                model = untrained_bundle("fast", scratch / "fast")
        else:
            model = args.model
        car = build_bench_car(model, scratch / "data", args.rate, args.track)
        loop, pilot = car.loop, car.pilot
        done = threading.Event()
        progress = threading.Thread(target=_progress, args=(loop, args.ticks, done), daemon=True)
        progress.start()
        try:
            loop.run(max_ticks=args.ticks)
        finally:
            done.set()
            progress.join()
        stats = loop.stats()
        records = car.recorder.records
    return {
        "ticks": stats["ticks"],
        "rate_hz": stats["rate_hz"],
        "overruns": stats["overruns"],
        "missed_ticks": stats["missed_ticks"],
        "faulted_ticks": stats["faulted_ticks"],
        "p99_period_error_ms": stats["period_error"]["p99_ms"],
        "max_period_error_ms": stats["period_error"]["max_ms"],
        "tick_p99_ms": stats["tick"]["p99_ms"],
        "parts": {
            name: {k: part[k] for k in ("p50_ms", "p99_ms", "max_ms")}
            for name, part in stats["parts"].items()
        },
        "records": records,
        "model": f"{pilot.card.architecture} {pilot.card.quantization}"
        + ("" if args.model else " (untrained)"),
        "machine": f"{platform.machine()} {platform.processor() or platform.node()}",
    }
