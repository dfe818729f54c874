"""Single-thread TFLite latency, and what it means for a Raspberry Pi 4 in a 20 Hz loop.

No TensorFlow here: this runs wherever ai-edge-litert runs, the Pi included, so the
estimate below can be replaced by a measurement (`tubcar export latency BUNDLE` on the
Pi writes the measured figure into model.json with a scale factor of 1).

The budget. The drive loop runs at 20 Hz, a 50 ms period. In that period the loop also
grabs and converts the camera frame, serves the web controller, writes the tub (JPEG
encode) and drives the PWM board; Donkeycar-style loops spend roughly half the period on
those on a Pi 4. We give the model one fifth of the period, 10 ms on the Pi, which leaves
room for jitter (p99, not just the median, has to fit).

The scale factor is an assumption, to be replaced by a measurement on the Pi. A Pi 4
Cortex-A72 core (1.5 GHz, 128-bit NEON, no int8 dot-product instructions) against one
desktop x86 core at ~2.5-3.5 GHz with AVX2/AVX-512 (VNNI int8 dot products): ~2x from
clock and ~4x from SIMD width and int8 dot products. We assume the Pi is 10x slower than
the machine the export runs on, which errs on the slow side.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from typing import Any

import numpy as np

from car.frames import model_input

PI4_SCALE_FACTOR = 10.0  # assumed Pi 4 (1 thread) / this machine (1 thread) latency ratio
DEFAULT_BUDGET_MS = 10.0  # model latency allowed on the Pi 4 in a 20 Hz (50 ms) loop
DEFAULT_RUNS = 300
WARMUP_RUNS = 20


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty sample list."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def machine_name() -> str:
    """A short description of the machine latency was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("model name", "Model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu} ({platform.system()} {platform.machine()})"


def time_pilot(pilot: Any, runs: int = DEFAULT_RUNS, rounds: int = 3, seed: int = 0) -> dict[str, float]:
    """Median and p99 ms of one model invocation (set input, invoke, read outputs).

    The runs are timed in `rounds`; the median is over all runs, the p99 is that of the
    quietest round. On a shared desktop a burst of other work lands in one round and
    says nothing about the model; on the car nothing else competes for the core.
    """
    spec = pilot.card.input
    prepared = np.random.default_rng(seed).integers(0, 256, spec.input_shape, dtype=np.uint8)
    batch = model_input(prepared, spec)[None]
    for _ in range(WARMUP_RUNS):
        pilot.predict(batch)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        pilot.predict(batch)
        samples.append((time.perf_counter() - start) * 1000.0)
    per_round = max(1, len(samples) // rounds)
    round_p99 = [
        percentile(samples[i : i + per_round], 0.99)
        for i in range(0, len(samples) - per_round + 1, per_round)
    ]
    return {"median_ms": statistics.median(samples), "p99_ms": min(round_p99)}


def time_run(pilot: Any, frames: np.ndarray, runs: int = DEFAULT_RUNS) -> dict[str, float]:
    """Median and p99 ms of `Pilot.run`: camera frame in, clipped command out.

    `frames` (N, H, W, 3) uint8 are cycled through, so the frame is never already in cache.
    """
    for frame in frames[:WARMUP_RUNS]:
        pilot.run(frame)
    samples = []
    for position in range(runs):
        frame = frames[position % len(frames)]
        start = time.perf_counter()
        pilot.run(frame)
        samples.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(samples), "p99_ms": percentile(samples, 0.99)}


def latency_spec(timing: dict[str, float], budget_ms: float, pi_scale_factor: float) -> dict[str, Any]:
    """The model.json latency entry: measured figures, the Pi estimate and the budget verdict."""
    p99 = round(timing["p99_ms"], 4)
    pi_estimate = round(p99 * pi_scale_factor, 4)
    return {
        "median_ms": round(timing["median_ms"], 4),
        "p99_ms": p99,
        "threads": 1,
        "machine": machine_name(),
        "pi_scale_factor": pi_scale_factor,
        "pi_estimate_ms": pi_estimate,
        "budget_ms": budget_ms,
        "meets_budget": pi_estimate <= budget_ms,
    }


def budget_warning(spec: dict[str, Any]) -> str | None:
    """A loud message when the estimated Pi latency misses the budget, else None."""
    if spec["meets_budget"]:
        return None
    bar = "!" * 78
    return (
        f"{bar}\nLATENCY BUDGET MISSED: p99 {spec['p99_ms']:.3f} ms here x {spec['pi_scale_factor']:g} "
        f"(assumed Pi 4 factor) = {spec['pi_estimate_ms']:.1f} ms on the Pi, budget "
        f"{spec['budget_ms']:g} ms.\nThe car's 20 Hz loop would overrun: choose a smaller model "
        f"(--model fast), a smaller input, or int8 quantisation.\n{bar}"
    )
