"""The acceptance measurements of the README, end to end.

`sim`: record the expert on a few track seeds, train each architecture on those tubs
(timed), export int8, drive every model closed loop on unseen seeds (as `tubcar sim
drive` does) and measure TFLite latency (as `tubcar bench infer` does).

`real`: on the real Donkey tub, train on records 0-799 only (dev split inside them) and
score the steering MSE on records 800-999, an untouched test block, against predicting
the training mean. The test block is scored through `car.pilot.Pilot` (the exported
TFLite model, exactly as the car would run it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.infer import ARCHITECTURES as TIMED_ARCHITECTURES
from benchmarks.infer import measure as measure_latency
from car.frames import to_model_input
from car.pilot import Pilot
from evaluation.scoring import camera_pilot, score
from sim import Simulation, Track, record_tub
from training.data import load_frames
from training.flags import flag
from training.split import split_frames
from training.train import TrainOptions, train


def record_sim(
    out: Path, seeds: tuple[int, ...], laps: int, noise: float, progress: bool = False
) -> list[Path]:
    """One tub per seed (kept from an earlier run), the expert driving as in `tubcar sim record`."""
    tubs = []
    for seed in seeds:
        tub = out / f"track{seed}"
        if not tub.exists():
            sim = Simulation(Track.from_seed(seed), seed=seed)
            record_tub(sim, tub, laps=laps, noise=noise, seed=seed, progress=progress)
        tubs.append(tub)
    return tubs


def drive_sim(bundle: Path, seeds: tuple[int, ...], laps: int) -> dict[str, Any]:
    """The bundle's closed-loop score on each seed, as `tubcar sim drive --json` reports it."""
    pilot = Pilot.load(bundle)
    return {
        str(seed): score(camera_pilot(pilot.run), Simulation(Track.from_seed(seed)), laps=laps)
        for seed in seeds
    }


def passes(drives: dict[str, Any], min_autonomy: float = 0.995) -> bool:
    return all(
        r["completed"] and r["interventions"] == 0 and r["autonomy"] >= min_autonomy for r in drives.values()
    )


@dataclass(frozen=True, kw_only=True)
class SimPlan:
    """What `sim` records and drives; each field is a flag of `tubcar acceptance sim`."""

    train_seeds: tuple[int, ...] = flag((1, 2, 3), "track seeds recorded for training", nargs="+")
    train_laps: int = flag(3, "laps recorded per training seed")
    test_seeds: tuple[int, ...] = flag((101, 102, 103), "track seeds driven, never trained on", nargs="+")
    drive_laps: int = flag(5, "laps driven on each test seed")
    noise: float = flag(0.3, "expert steering noise while recording")


def sim_acceptance(
    out: Path, architectures: list[str], options: TrainOptions, plan: SimPlan = SimPlan(), log=print
) -> dict:
    """Record, train each architecture (timed), drive on unseen seeds, bench latency."""
    out.mkdir(parents=True, exist_ok=True)
    tubs = record_sim(out / "tubs", plan.train_seeds, plan.train_laps, plan.noise)
    log(f"recorded {len(tubs)} tubs, {plan.train_laps} laps each, seeds {list(plan.train_seeds)}")
    summary: dict[str, Any] = {
        "train_seeds": list(plan.train_seeds),
        "train_laps": plan.train_laps * len(plan.train_seeds),
        "test_seeds": list(plan.test_seeds),
        "drive_laps": plan.drive_laps,
        "models": {},
    }
    bundles = {}
    for architecture in architectures:
        started = time.perf_counter()
        result = train(tubs, out / architecture, replace(options, architecture=architecture), log=log)
        seconds = time.perf_counter() - started
        bundles[architecture] = out / architecture
        drives = drive_sim(out / architecture, plan.test_seeds, plan.drive_laps)
        summary["models"][architecture] = {
            "train_seconds": round(seconds, 1),
            "quantization": result.card.quantization,
            "parity": {key: result.card.parity[key] for key in ("angle", "throttle", "passed")},
            "test_steering_mse": result.metrics["errors"]["test"]["angle"]["mse"],
            "drives": {
                seed: {
                    k: r[k] for k in ("laps", "completed", "interventions", "autonomy", "mean_cte", "max_cte")
                }
                for seed, r in drives.items()
            },
            "passed": passes(drives),
        }
        drove = json.dumps(summary["models"][architecture]["drives"])
        log(f"{architecture}: trained in {seconds:.0f} s, drives {drove}")
    if set(bundles) >= set(TIMED_ARCHITECTURES):
        summary["latency"] = measure_latency({name: bundles[name] for name in TIMED_ARCHITECTURES})
    (out / "acceptance.json").write_text(json.dumps(summary, indent=2))
    return summary


def real_acceptance(
    tub: Path, out: Path, options: TrainOptions, train_stop: int = 800, test_stop: int = 1000, log=print
) -> dict[str, Any]:
    """Train on records [0, train_stop), test on [train_stop, test_stop) of one real tub."""
    frames, report = load_frames([tub], options.rules, options.workers, progress=False)
    before = np.flatnonzero(frames.indexes < train_stop)
    test_positions = np.flatnonzero((frames.indexes >= train_stop) & (frames.indexes < test_stop))
    known = frames.take(before)
    split_config = replace(options.split, fractions=(0.9, 0.1, 0.0))
    split = split_frames(known.sessions, split_config)
    result = train(
        None, out, replace(options, split=split_config), frames=(known, report), split=split, log=log
    )

    pilot = Pilot.load(out)
    test = frames.take(test_positions)
    predicted = np.array(
        [pilot.predict(to_model_input(image, pilot.card.input)[None])["angle"] for image in test.images]
    )
    train_mean = float(known.angles[split.train].mean())
    mse = float(np.mean((np.clip(predicted, -1, 1) - test.angles) ** 2))
    baseline = float(np.mean((train_mean - test.angles) ** 2))
    summary = {
        "tub": str(tub),
        "train_records": f"[0, {train_stop})",
        "test_records": f"[{train_stop}, {test_stop})",
        "split_sizes": split.sizes(),
        "test_frames": len(test),
        "test_steering_mse": mse,
        "mean_baseline_mse": baseline,
        "ratio": mse / baseline,
        "goal_ratio": 0.5,
        "passed": mse <= 0.5 * baseline,
        "quantization": result.card.quantization,
        "dev_steering_mse": result.metrics["errors"]["dev"]["angle"]["mse"],
    }
    (out / "acceptance_real.json").write_text(json.dumps(summary, indent=2))
    return summary
