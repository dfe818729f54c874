"""Single-thread latency of linear, pilotnet and fast, beside a Donkeycar-style reference.

Two figures per bundle, both through `car.pilot.Pilot` with one thread, as on the car:
- `median_ms`/`p99_ms`: the model alone (`Pilot.predict` on a ready input);
- `run_median_ms`/`run_p99_ms`: frame in, command out (`Pilot.run` on 160x120 camera
  frames: crop, resize, normalise or not, invoke, read and scale the outputs).

The reference, `donkey`, is how a Donkeycar runs its default pilot: its linear
architecture (the same layers as our `linear`), converted to float32 TFLite with no
optimisation, fed the whole 120x160 frame divided by 255. It is built here, untrained,
like the others when no bundle is given (latency does not depend on the weights' values).
The pilots are timed in interleaved rounds, so that load from other processes hits all
alike; a round's p99 is taken and the median over rounds is reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from car.frames import FrameSpec

ARCHITECTURES = ("linear", "pilotnet", "fast")
REFERENCE = "donkey"
CAMERA_FRAMES = 500  # distinct 160x120 frames cycled through by Pilot.run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name in ARCHITECTURES:
        parser.add_argument(f"--{name}", type=Path, help=f"{name} bundle (default: untrained int8 export)")
    parser.add_argument("--runs", type=int, default=500, help="timed calls per pilot per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")


def untrained_bundle(
    architecture: str, out: Path, quantization: str = "int8", spec: FrameSpec | None = None
) -> Path:
    """Export an untrained model of `architecture` into `out` (int8: calibrated on random frames)."""
    import numpy as np

    from training.export import export_bundle
    from training.models import build_model, default_frame_spec

    spec = spec or default_frame_spec(architecture)
    frames = np.random.default_rng(0).integers(0, 256, (32, *spec.input_shape), dtype=np.uint8)
    export_bundle(
        build_model(architecture, spec.input_shape),
        spec,
        out,
        architecture=architecture,
        representative=frames,
        parity_inputs=frames,
        quantization=quantization,
        log=lambda _: None,
    )
    return out


def donkey_bundle(out: Path) -> Path:
    """The reference: Donkeycar's linear layers, float32 TFLite, the whole 160x120 frame / 255."""
    return untrained_bundle("linear", out, "float32", FrameSpec(160, 120, scale=1 / 255, offset=0.0))


def run(args: argparse.Namespace) -> dict:
    return measure({name: getattr(args, name) for name in ARCHITECTURES}, args.runs, args.rounds)


def measure(bundles: dict[str, Path | None], runs: int = 500, rounds: int = 5) -> dict[str, Any]:
    """Model and frame-to-command latency of each bundle (None: an untrained int8 export).

    `bundles` names a bundle (or None) for each of ARCHITECTURES; the Donkeycar-style
    reference is always built here. Each pilot is timed `runs` times per round, in
    `rounds` interleaved rounds.
    """
    import numpy as np

    from car.pilot import Pilot
    from training.latency import percentile, time_pilot, time_run

    frames = np.random.default_rng(1).integers(0, 256, (CAMERA_FRAMES, 120, 160, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        paths = {name: bundles[name] or untrained_bundle(name, scratch_path / name) for name in ARCHITECTURES}
        paths[REFERENCE] = donkey_bundle(scratch_path / REFERENCE)
        pilots = {name: Pilot.load(path, num_threads=1) for name, path in paths.items()}
        rounds_of: dict[str, list[dict[str, float]]] = {name: [] for name in pilots}
        for _ in range(rounds):
            for name, pilot in pilots.items():
                model, whole = time_pilot(pilot, runs=runs, rounds=1), time_run(pilot, frames, runs)
                rounds_of[name].append(
                    {**model, "run_median_ms": whole["median_ms"], "run_p99_ms": whole["p99_ms"]}
                )
    result: dict[str, Any] = {}
    for name, pilot in pilots.items():
        timings = rounds_of[name]
        result[name] = {
            "median_ms": round(statistics.median(t["median_ms"] for t in timings), 4),
            "p99_ms": round(percentile([t["p99_ms"] for t in timings], 0.5), 4),
            "run_median_ms": round(statistics.median(t["run_median_ms"] for t in timings), 4),
            "run_p99_ms": round(percentile([t["run_p99_ms"] for t in timings], 0.5), 4),
            "quantization": pilot.card.quantization,
            "input": [*pilot.card.input.input_shape, pilot.card.input.dtype],
            "bundle": "untrained" if name == REFERENCE else str(bundles[name] or "untrained"),
        }
    result["ratio_fast_linear"] = round(result["fast"]["median_ms"] / result["linear"]["median_ms"], 4)
    result["ratio_run_fast_donkey"] = round(
        result["fast"]["run_median_ms"] / result[REFERENCE]["run_median_ms"], 4
    )
    result["threads"] = 1
    result["runs"] = runs * rounds
    return result
