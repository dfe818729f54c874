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
the machine the export runs on, which errs on the slow side; every report says so.

The measurement. On a shared desktop the process is sometimes held up by other work for
a few milliseconds: that is not the model, and the car's core is not shared. So the calls
are timed in rounds after a warm-up; calls slower than OUTLIER_FACTOR x the median were
held up (a TFLite call does the same work every time) and are counted and reported apart,
never silently dropped, but left out of the p99; the p99 is the median of the rounds' p99s,
so a slower stretch of a few rounds does not move it either. When more than
OUTLIER_SHARE_TO_WARN of the calls were held up, the report says to re-measure.
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
DEFAULT_RUNS = 1000  # timed calls in all, split into rounds
DEFAULT_ROUNDS = 5
MIN_ROUND_RUNS = 100  # so that a round's p99 is never just its slowest call
WARMUP_RUNS = 50
OUTLIER_FACTOR = 5.0  # a call this many times slower than the median was held up by other work
OUTLIER_SHARE_TO_WARN = 0.01  # above this share of held-up calls the machine was too busy to trust


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


def time_pilot(
    pilot: Any, runs: int = DEFAULT_RUNS, rounds: int = DEFAULT_ROUNDS, seed: int = 0
) -> dict[str, float]:
    """Median and a stable p99 ms of one model invocation (set input, invoke, read outputs).

    `runs` calls in `rounds` rounds (at least MIN_ROUND_RUNS each) after WARMUP_RUNS
    untimed ones; the p99 is the median of the rounds' p99s over the calls that were not
    held up. Also returns the number of calls timed, the outliers (calls slower than
    OUTLIER_FACTOR x the median, left out of the p99) and the slowest call, for the report.
    """
    spec = pilot.card.input
    prepared = np.random.default_rng(seed).integers(0, 256, spec.input_shape, dtype=np.uint8)
    batch = model_input(prepared, spec)[None]
    for _ in range(WARMUP_RUNS):
        pilot.predict(batch)
    samples = []
    for _ in range(max(runs, MIN_ROUND_RUNS)):
        start = time.perf_counter()
        pilot.predict(batch)
        samples.append((time.perf_counter() - start) * 1000.0)
    return summarise_timings(samples, rounds)


def summarise_timings(samples: list[float], rounds: int = DEFAULT_ROUNDS) -> dict[str, float]:
    """`time_pilot`'s figures from the calls' times in ms, in the order they were taken."""
    per_round = max(MIN_ROUND_RUNS, len(samples) // max(1, rounds))
    median = statistics.median(samples)
    limit = OUTLIER_FACTOR * median
    chunks = [samples[i : i + per_round] for i in range(0, len(samples) - per_round + 1, per_round)]
    round_p99 = [percentile([s for s in chunk if s <= limit] or chunk, 0.99) for chunk in chunks]
    return {
        "median_ms": median,
        "p99_ms": statistics.median(round_p99),
        "runs": len(samples),
        "rounds": len(round_p99),
        "outliers": sum(sample > limit for sample in samples),
        "slowest_ms": max(samples),
    }


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


def latency_report(timing: dict[str, float], spec: Any, architecture: str, quantization: str) -> list[str]:
    """What the export and `tubcar export latency` print: the measurement, the Pi estimate
    with its assumed factor, and, when the estimate misses the budget, advice for this model.

    `timing` is `time_pilot`'s result, `spec` the bundle's LatencySpec (or its dict).
    """
    spec = spec if isinstance(spec, dict) else spec.model_dump()
    lines = [
        f"latency here (1 thread, {spec['machine']}): median {timing['median_ms']:.3f} ms, "
        f"p99 {timing['p99_ms']:.3f} ms (median of {timing['rounds']} rounds' p99, {timing['runs']} calls "
        f"after {WARMUP_RUNS} warm-up)"
    ]
    outlier_share = timing["outliers"] / timing["runs"]
    if timing["outliers"]:
        lines.append(
            f"  {timing['outliers']} calls ({outlier_share:.1%}) took over {OUTLIER_FACTOR:g}x the median "
            f"(slowest {timing['slowest_ms']:.2f} ms): other work held this process up; they are "
            "left out of the p99 above"
        )
    factor = spec["pi_scale_factor"]
    measured = factor == 1
    source = (
        "measured here"
        if measured
        else f"this p99 x {factor:g}, an assumed Pi 4 / this machine factor, not a measurement"
    )
    verdict = "fits" if spec["meets_budget"] else "MISSES"
    lines.append(
        f"Pi 4 p99 {spec['pi_estimate_ms']:.2f} ms ({source}); budget {spec['budget_ms']:g} ms: {verdict}"
    )
    if not spec["meets_budget"]:
        lines += _advice(architecture, quantization, measured, outlier_share)
    return lines


def _advice(architecture: str, quantization: str, measured: bool, outlier_share: float) -> list[str]:
    """What to do about a missed budget, for this model: never what it already is."""
    steps = []
    if outlier_share > OUTLIER_SHARE_TO_WARN:
        steps.append("this machine was busy while timing: re-measure on a quiet machine")
    if not measured:
        steps.append(
            "measure on the Pi itself (`tubcar export latency BUNDLE --pi-scale-factor 1`): "
            "the factor is a guess and errs on the slow side"
        )
    if architecture != "fast":
        steps.append("train the `fast` architecture (--model fast, ~0.2x the latency of `linear`)")
    if quantization != "int8":
        steps.append(f"export int8 (--quantize int8; this bundle is {quantization})")
    if architecture == "fast" and quantization == "int8":
        steps.append(
            "it is already `fast` and int8: if the Pi confirms, narrow it (--width-multiplier 0.5) "
            "or give it a smaller input (--width/--height)"
        )
    bar = "!" * 78
    return (
        [bar, "LATENCY BUDGET MISSED: the car's 20 Hz loop would overrun. What to do:"]
        + [f"  - {step}" for step in steps]
        + [bar]
    )
