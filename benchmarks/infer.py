"""TFLite single-thread latency of linear, pilotnet and fast, and the fast/linear ratio.

Give trained bundles (`--fast DIR` ...) or let the benchmark build untrained models of
each architecture and export them int8 in a temporary folder (latency does not depend on
the weights' values). Timing goes through `car.pilot.Pilot.predict` with one thread, as on
the car. The models are timed in interleaved rounds so that load from other processes
hits all three alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

ARCHITECTURES = ("linear", "pilotnet", "fast")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name in ARCHITECTURES:
        parser.add_argument(f"--{name}", type=Path, help=f"{name} bundle (default: untrained int8 export)")
    parser.add_argument("--runs", type=int, default=300, help="timed invocations per model per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")


def untrained_bundle(architecture: str, folder: Path) -> Path:
    """Export an untrained int8 model of `architecture` (calibrated on random frames)."""
    import numpy as np

    from training.export import export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec(architecture)
    model = build_model(architecture, spec.input_shape)
    frames = np.random.default_rng(0).random((32, *spec.input_shape), dtype=np.float32)
    export_bundle(
        model,
        spec,
        folder / architecture,
        architecture=architecture,
        representative=frames,
        parity_inputs=frames,
        quantization="int8",
        log=lambda _: None,
    )
    return folder / architecture


def run(args: argparse.Namespace) -> dict:
    return measure({name: getattr(args, name) for name in ARCHITECTURES}, args.runs, args.rounds)


def measure(bundles: dict[str, Path | None], runs: int = 300, rounds: int = 5) -> dict[str, Any]:
    """Latency of each architecture's bundle (None: an untrained int8 export), and the ratio.

    `bundles` names a bundle (or None) for each of ARCHITECTURES; each model is timed
    `runs` times per round, in `rounds` interleaved rounds.
    """
    from car.pilot import Pilot
    from training.latency import percentile, time_pilot

    with tempfile.TemporaryDirectory() as scratch:
        paths = {name: bundles[name] or untrained_bundle(name, Path(scratch)) for name in ARCHITECTURES}
        pilots = {name: Pilot.load(path, num_threads=1) for name, path in paths.items()}
        medians: dict[str, list[float]] = {name: [] for name in ARCHITECTURES}
        p99s: dict[str, list[float]] = {name: [] for name in ARCHITECTURES}
        for _ in range(rounds):
            for name, pilot in pilots.items():
                timing = time_pilot(pilot, runs=runs)
                medians[name].append(timing["median_ms"])
                p99s[name].append(timing["p99_ms"])
        result: dict[str, Any] = {}
        for name in ARCHITECTURES:
            result[name] = {
                "median_ms": round(statistics.median(medians[name]), 4),
                "p99_ms": round(percentile(p99s[name], 0.5), 4),
                "quantization": pilots[name].card.quantization,
                "input": list(pilots[name].card.input.input_shape),
                "bundle": str(bundles[name] or "untrained"),
            }
    result["ratio_fast_linear"] = round(result["fast"]["median_ms"] / result["linear"]["median_ms"], 4)
    result["threads"] = 1
    result["runs"] = runs * rounds
    return result
