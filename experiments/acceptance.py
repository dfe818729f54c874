"""The acceptance measurements of the README, end to end.

`sim`: record the expert on a few track seeds, train each architecture on those tubs
(timed), export int8, drive every model on unseen seeds with `scripts/sim.py drive --json`
and measure TFLite latency with `scripts/bench.py infer --json`.

`real`: on the real Donkey tub, train on records 0-799 only (dev split inside them) and
score the steering MSE on records 800-999, an untouched test block, against predicting
the training mean. The test block is scored through `car.pilot.Pilot` (the exported
TFLite model, exactly as the car would run it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from car.frames import to_model_input
from training.data import load_frames
from training.split import split_frames
from training.train import TrainOptions, train

REPO = Path(__file__).resolve().parents[1]


def run_json(args: list[str]) -> dict[str, Any]:
    """Run one of the repo's scripts with --json and return its last stdout line as JSON."""
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[first:]))


def record_sim(out: Path, seeds: list[int], laps: int, noise: float) -> list[Path]:
    """Record one tub per seed with the expert driver (`scripts/sim.py record`)."""
    tubs = []
    for seed in seeds:
        tub = out / f"track{seed}"
        if not tub.exists():
            subprocess.run(
                [
                    sys.executable,
                    "scripts/sim.py",
                    "record",
                    "--track",
                    str(seed),
                    "--laps",
                    str(laps),
                    "--out",
                    str(tub),
                    "--noise",
                    str(noise),
                    "--seed",
                    str(seed),
                ],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
        tubs.append(tub)
    return tubs


def drive_sim(bundle: Path, seeds: list[int], laps: int) -> dict[str, Any]:
    """`scripts/sim.py drive --json` on each seed; autonomy and interventions per seed."""
    results = {}
    for seed in seeds:
        results[str(seed)] = run_json(
            [
                "scripts/sim.py",
                "drive",
                "--model",
                str(bundle),
                "--track",
                str(seed),
                "--laps",
                str(laps),
                "--json",
            ]
        )
    return results


def passes(drives: dict[str, Any], min_autonomy: float = 0.995) -> bool:
    return all(
        r["completed"] and r["interventions"] == 0 and r["autonomy"] >= min_autonomy for r in drives.values()
    )


def sim_acceptance(
    out: Path,
    architectures: list[str],
    options: TrainOptions,
    train_seeds: list[int],
    train_laps: int,
    test_seeds: list[int],
    drive_laps: int,
    noise: float = 0.3,
    log=print,
) -> dict:
    """Record, train each architecture (timed), drive on unseen seeds, bench latency."""
    out.mkdir(parents=True, exist_ok=True)
    tubs = record_sim(out / "tubs", train_seeds, train_laps, noise)
    log(f"recorded {len(tubs)} tubs, {train_laps} laps each, seeds {train_seeds}")
    summary: dict[str, Any] = {
        "train_seeds": train_seeds,
        "train_laps": train_laps * len(train_seeds),
        "test_seeds": test_seeds,
        "drive_laps": drive_laps,
        "models": {},
    }
    bundles = {}
    for architecture in architectures:
        started = time.perf_counter()
        result = train(tubs, out / architecture, replace(options, architecture=architecture), log=log)
        seconds = time.perf_counter() - started
        bundles[architecture] = out / architecture
        drives = drive_sim(out / architecture, test_seeds, drive_laps)
        summary["models"][architecture] = {
            "train_seconds": round(seconds, 1),
            "quantization": result.card.quantization,
            "test_steering_mse": result.metrics["errors"]["test"]["angle"]["mse"],
            "drives": {
                seed: {
                    k: r[k] for k in ("laps", "completed", "interventions", "autonomy", "mean_cte", "max_cte")
                }
                for seed, r in drives.items()
            },
            "passed": passes(drives),
        }
        log(
            f"{architecture}: trained in {seconds:.0f} s, drives {json.dumps(summary['models'][architecture]['drives'])}"
        )
    if set(bundles) >= {"fast", "linear", "pilotnet"}:
        args = ["scripts/bench.py", "infer", "--json"]
        for name in ("linear", "pilotnet", "fast"):
            args += [f"--{name}", str(bundles[name])]
        summary["latency"] = run_json(args)
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

    from car.pilot import Pilot

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
