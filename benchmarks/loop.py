"""Drive loop timing: `tubcar bench loop [--ticks 2000] [--model DIR] [--load N] --json`.

The car's own loop, built by `build_car` in real time at 20 Hz: the simulator's camera,
a scripted controller holding `local_angle` mode (the pilot steers) at a steady throttle
with recording on (in place of the phone), the TFLite pilot (run on every frame), the
mixer, the failsafe, the throttle limiter, the simulator's actuator and the tub recorder
(JPEG + JSON for every tick: the car always moves). Reports
overruns (goal 0), the p99 of |actual period - target period| (goal <= 2 ms) and each
part's p50/p99/max. Without --model it exports the untrained `fast` network: the same
architecture, so the same latency, as a trained one.

`--load N` runs the loop twice in one run: idle, then beside N busy processes (each
spinning a core), and reports the loaded run's `overruns`, `missed_ticks`,
`p99_period_error_ms` and `max_period_error_ms` beside the idle run's
`idle_p99_period_error_ms`. On a shared VM the host's own jitter sets the idle figure, so
the goal is relative: with 2 busy processes, 0 overruns, 0 missed ticks, loaded p99 <= 2x
idle p99 and no period error over 50 ms. `--realtime-priority 0` measures the loop
without real-time scheduling, for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

# Ordinary scheduling, whatever the parent's (never a real-time spinner that starves the machine).
BUSY_LOOP = "import os; os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))\nwhile True: pass"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticks", type=int, default=2000, help="loop ticks to run (2000 at 20 Hz = 100 s)")
    parser.add_argument("--rate", type=float, default=20.0, help="loop rate, Hz")
    parser.add_argument("--model", type=Path, help="model bundle; default: export the untrained `fast` model")
    parser.add_argument("--track", type=int, default=1, help="simulator track seed")
    parser.add_argument(
        "--load", type=int, default=0, help="also run beside this many busy processes (after an idle run)"
    )
    parser.add_argument(
        "--realtime-priority",
        type=int,
        default=None,
        help="the loop thread's SCHED_FIFO priority (default: the car config's; 0: ordinary scheduling)",
    )


def _untrained_bundle(folder: Path) -> Path:
    """Export the `fast` architecture, untrained, as the car would receive it."""
    import numpy as np

    from car.frames import to_model_input
    from training.export import export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    model = build_model("fast", spec.input_shape)
    frames = np.random.default_rng(0).integers(
        0, 256, (32, spec.source_height, spec.source_width, 3), np.uint8
    )
    inputs = np.stack([to_model_input(frame, spec) for frame in frames])
    export_bundle(
        model,
        spec,
        folder,
        architecture="fast",
        representative=inputs,
        parity_inputs=inputs,
        log=lambda *_: None,
    )
    return folder


def build_bench_car(
    model: Path, tub_dir: Path, rate_hz: float, track: int, realtime_priority: int | None = None
):
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
    if realtime_priority is not None:
        config.loop.realtime_priority = realtime_priority
    sim = make_simulation(track, rate_hz, spec.source_width, spec.source_height)
    controller = ScriptedController(
        Command(throttle=0.4, mode=ch.MODE_LOCAL_ANGLE, recording=True),
        throttle_cap=config.pilot.throttle_cap,
    )
    return simulated_car(config, sim, controller=controller, model_dir=model)


def _progress(loop, ticks: int, done: threading.Event) -> None:
    from tqdm import tqdm

    with tqdm(total=ticks, unit="tick", desc="loop", leave=False) as bar:
        while not done.wait(0.5):
            bar.update(loop.ticks - bar.n)
        bar.update(loop.ticks - bar.n)


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """`count` processes spinning a core each (ordinary priority), for as long as the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def measure(args: argparse.Namespace, model: Path, tub_dir: Path) -> tuple[dict, int, str]:
    """One run of `args.ticks` ticks: the loop's stats, the records written, the scheduling."""
    car = build_bench_car(model, tub_dir, args.rate, args.track, args.realtime_priority)
    loop = car.loop
    done = threading.Event()
    progress = threading.Thread(target=_progress, args=(loop, args.ticks, done), daemon=True)
    progress.start()
    try:
        loop.run(max_ticks=args.ticks)
    finally:
        done.set()
        progress.join()
    return loop.stats(), car.recorder.records, loop.scheduling or "ordinary"


def run(args: argparse.Namespace) -> dict:
    from car.bundle import load_card

    with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
        scratch = Path(folder)
        if args.model is None:
            with contextlib.redirect_stdout(sys.stderr):  # TensorFlow's export chatter would spoil --json
                model = _untrained_bundle(scratch / "fast")
        else:
            model = args.model
        card = load_card(model)
        idle = measure(args, model, scratch / "idle") if args.load else None
        with busy_processes(args.load):
            stats, records, scheduling = measure(args, model, scratch / "data")
    result = {
        "ticks": stats["ticks"],
        "rate_hz": stats["rate_hz"],
        "load": args.load,
        "scheduling": scheduling,
        "overruns": stats["overruns"],
        "missed_ticks": stats["missed_ticks"],
        "faulted_ticks": stats["faulted_ticks"],
        "watchdog_trips": stats["watchdog_trips"],
        "p99_period_error_ms": stats["period_error"]["p99_ms"],
        "max_period_error_ms": stats["period_error"]["max_ms"],
        "tick_p99_ms": stats["tick"]["p99_ms"],
    }
    if idle is not None:
        idle_stats = idle[0]
        result |= {
            "idle_p99_period_error_ms": idle_stats["period_error"]["p99_ms"],
            "idle_max_period_error_ms": idle_stats["period_error"]["max_ms"],
            "idle_overruns": idle_stats["overruns"],
            "idle_missed_ticks": idle_stats["missed_ticks"],
        }
    return result | {
        "parts": {
            name: {k: part[k] for k in ("p50_ms", "p99_ms", "max_ms")}
            for name, part in stats["parts"].items()
        },
        "records": records,
        "model": f"{card.architecture} {card.quantization}" + ("" if args.model else " (untrained)"),
        "machine": f"{platform.machine()} {platform.processor() or platform.node()}",
    }
