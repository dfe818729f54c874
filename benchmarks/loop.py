"""Drive loop timing: `bench.py loop [--ticks 2000] [--model DIR] --json`.

The car's own loop at 20 Hz with the simulator's camera, the TFLite pilot (run on every
frame), the mixer, the throttle limiter, the tub recorder (JPEG + JSON for every tick)
and the simulator's actuator. Reports overruns (goal 0), the p99 of |actual period -
target period| (goal <= 2 ms) and each part's p50/p99/max. Without --model it exports
the untrained `fast` network: the same architecture, so the same latency, as a trained one.
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


def build_loop(model: Path, tub_dir: Path, rate_hz: float, track: int):
    """The loop under test and its recorder: sim camera -> pilot -> mixer -> limiter -> recorder -> sim."""
    from car import channels as ch
    from car.loop import Loop
    from car.parts import RECORD_FIELDS, SIM_RECORD_FIELDS, Mixer, PilotPart, Recorder, ThrottleLimiter
    from car.pilot import Pilot
    from sim.parts import SimActuator, SimCamera, make_simulation

    pilot = Pilot.load(model)
    spec = pilot.card.input
    sim = make_simulation(track, rate_hz, spec.source_width, spec.source_height)
    loop = Loop(rate_hz=rate_hz)
    loop.add(SimCamera(sim), outputs=[ch.CAMERA_IMAGE, ch.CAMERA_TIMESTAMP], name="camera")
    loop.add(
        PilotPart(pilot, always=True),
        inputs=[ch.CAMERA_IMAGE, ch.USER_MODE],
        outputs=[ch.PILOT_ANGLE, ch.PILOT_THROTTLE],
        name="pilot",
        defaults={ch.USER_MODE: ch.MODE_LOCAL, ch.RECORDING: True},
    )
    loop.add(
        Mixer(),
        inputs=[
            ch.USER_MODE,
            ch.USER_ANGLE,
            ch.USER_THROTTLE,
            ch.PILOT_ANGLE,
            ch.PILOT_THROTTLE,
            ch.THROTTLE_CAP,
        ],
        outputs=[ch.ANGLE, ch.THROTTLE],
        name="mixer",
        defaults={ch.USER_ANGLE: 0.0, ch.USER_THROTTLE: 0.0, ch.THROTTLE_CAP: 0.5},
    )
    loop.add(ThrottleLimiter(ramp_per_s=2.0), inputs=[ch.THROTTLE], outputs=[ch.THROTTLE], name="limiter")
    recorder = Recorder(tub_dir, RECORD_FIELDS + SIM_RECORD_FIELDS, in_autopilot=True)
    loop.add(
        recorder,
        inputs=recorder.inputs,
        name="recorder",
        defaults={name: 0.0 for name, _ in SIM_RECORD_FIELDS},
    )
    loop.add(
        SimActuator(sim),
        inputs=[ch.ANGLE, ch.THROTTLE],
        outputs=[name for name, _ in SIM_RECORD_FIELDS],
        name="actuator",
        critical=True,
    )
    return loop, recorder, pilot


def _progress(loop, ticks: int, done: threading.Event) -> None:
    from tqdm import tqdm

    with tqdm(total=ticks, unit="tick", desc="loop", leave=False) as bar:
        while not done.wait(0.5):
            bar.update(loop.ticks - bar.n)
        bar.update(loop.ticks - bar.n)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as scratch:
        scratch = Path(scratch)
        if args.model is None:
            with contextlib.redirect_stdout(sys.stderr):  # TensorFlow's export chatter would spoil --json
                model = _untrained_bundle(scratch / "fast")
        else:
            model = args.model
        loop, recorder, pilot = build_loop(model, scratch / "data", args.rate, args.track)
        done = threading.Event()
        progress = threading.Thread(target=_progress, args=(loop, args.ticks, done), daemon=True)
        progress.start()
        try:
            loop.run(max_ticks=args.ticks)
        finally:
            done.set()
            progress.join()
        stats = loop.stats()
        records = recorder.records
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
