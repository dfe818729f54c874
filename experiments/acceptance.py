"""The simulator acceptance of the README, end to end (the real-data protocol: real_protocol.py).

`sim`: record the expert on a few track seeds, train each architecture on those tubs
(timed), export int8, drive every model closed loop on unseen seeds (as `tubcar sim
drive` does) and measure TFLite latency (as `tubcar bench infer` does). Then the
robustness check: the first architecture (the default model) drives `unseen_laps` laps on
each of `unseen_seeds` more seeds, picked at random by the script (and printed) among
seeds no run has trained on.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.infer import ARCHITECTURES as TIMED_ARCHITECTURES
from benchmarks.infer import measure as measure_latency
from car.pilot import Pilot
from evaluation.scoring import camera_pilot, score
from sim import Simulation, Track, record_tub
from sim.expert import LANES
from sim.presets import PRESETS, driver_options, get_preset
from training.flags import flag
from training.train import TrainOptions, stages_text, train

DRIVE_FIELDS = ("laps", "completed", "interventions", "autonomy", "mean_cte", "max_cte")


def simulation(seed: int, preset: str = "mixed", floor: int | None = None) -> Simulation:
    """The seeded track of `preset` (on the preset's floor `floor` if given) with the
    preset's camera effects (seeded too)."""
    return Simulation(Track.from_seed(seed, preset, floor), effects=get_preset(preset).effects, seed=seed)


def record_sim(
    out: Path,
    seeds: tuple[int, ...],
    laps: int,
    noise: float,
    preset: str = "mixed",
    progress: bool = False,
    span_floors: bool = False,
    **driver: Any,
) -> list[Path]:
    """One tub per seed (kept from an earlier run), the expert driving as in `tubcar sim
    record`: on tracks of `preset`, its lane and line the preset's driver's unless `driver`
    (`ExpertDriver` options) says otherwise.

    `span_floors`: one tub per lap instead, the n-th lap recorded on the preset's n-th floor
    (`Track.from_seed(seed, floor=n)`, the rest of the look the seed's), so a few laps show
    the model every floor the generator lays tracks on, not the two or three the seeds drew."""
    options = {**driver_options(preset), **driver}
    name = "track" if preset == "mixed" else preset
    runs = (
        [(seed, None, laps, out / f"{name}{seed}") for seed in seeds]
        if not span_floors
        else [
            (seed, floor, 1, out / f"{name}{seed}-floor{floor}")
            for floor, seed in enumerate(seed for seed in seeds for _ in range(laps))
        ]
    )
    for seed, floor, run_laps, tub in runs:
        if not tub.exists():
            run_seed = seed if floor is None else seed * 100 + floor  # each lap its own noise
            record_tub(
                simulation(seed, preset, floor),
                tub,
                laps=run_laps,
                noise=noise,
                seed=run_seed,
                progress=progress,
                **options,
            )
    return [tub for *_, tub in runs]


def drive_sim(bundle: Path, seeds: tuple[int, ...], laps: int, preset: str = "mixed") -> dict[str, Any]:
    """The bundle's closed-loop score on each seed of `preset`, as `tubcar sim drive --json` reports it."""
    pilot = Pilot.load(bundle)
    return {str(seed): score(camera_pilot(pilot.run), simulation(seed, preset), laps=laps) for seed in seeds}


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
    span_floors: bool = flag(
        True,
        "record each training lap on the next of the preset's floors (one tub per lap)",
        action=argparse.BooleanOptionalAction,
    )
    unseen_seeds: int = flag(10, "more unseen seeds the default model drives (picked at random, printed)")
    unseen_laps: int = flag(5, "laps driven on each of them")
    pick_seed: int = flag(19, "seeds the pick of the unseen seeds")
    preset: str = flag("mixed", "kind of track every seed draws", choices=tuple(PRESETS))
    lane: str | None = flag(None, "the expert's lane (default: the preset driver's)", choices=LANES)
    lane_offset: float | None = flag(None, "lane middle from the yellow line, m (default: road / 4)")
    corner_cut: float | None = flag(None, "m towards the inside per 1/m of curve (default: the preset's)")

    def driver(self) -> dict[str, Any]:
        """The expert's options while recording."""
        return driver_options(self.preset, self.lane, self.lane_offset, self.corner_cut)

    def picked_seeds(self) -> list[int]:
        """`unseen_seeds` seeds in [200, 10000), none trained on or among the test seeds."""
        taken = {*self.train_seeds, *self.test_seeds}
        pool = [seed for seed in range(200, 10_000) if seed not in taken]
        picks = np.random.default_rng(self.pick_seed).choice(len(pool), self.unseen_seeds, replace=False)
        return sorted(pool[int(i)] for i in picks)


def sim_acceptance(
    out: Path, architectures: list[str], options: TrainOptions, plan: SimPlan = SimPlan(), log=print
) -> dict:
    """Record, train each architecture (timed), drive on unseen seeds, bench latency."""
    out.mkdir(parents=True, exist_ok=True)
    tubs = record_sim(
        out / "tubs",
        plan.train_seeds,
        plan.train_laps,
        plan.noise,
        plan.preset,
        span_floors=plan.span_floors,
        **plan.driver(),
    )
    log(
        f"recorded {len(tubs)} {plan.preset} tubs: {plan.train_laps} laps of each of seeds "
        f"{list(plan.train_seeds)}{', each lap on the next floor' if plan.span_floors else ''}"
    )
    summary: dict[str, Any] = {
        "preset": plan.preset,
        "driver": plan.driver(),
        "train_seeds": list(plan.train_seeds),
        "train_laps": plan.train_laps * len(plan.train_seeds),
        "span_floors": plan.span_floors,
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
        drives = drive_sim(out / architecture, plan.test_seeds, plan.drive_laps, plan.preset)
        summary["models"][architecture] = {
            "train_seconds": round(seconds, 1),
            "train_stages": result.stage_seconds,
            "quantization": result.card.quantization,
            "parity": {key: result.card.parity[key] for key in ("angle", "throttle", "passed")},
            "test_steering_mse": result.metrics["errors"]["test"]["angle"]["mse"],
            "drives": {seed: {k: r[k] for k in DRIVE_FIELDS} for seed, r in drives.items()},
            "passed": passes(drives),
        }
        drove = json.dumps(summary["models"][architecture]["drives"])
        took = stages_text(result.stage_seconds)
        log(f"{architecture}: trained in {seconds:.0f} s ({took}), drives {drove}")
    if plan.unseen_seeds > 0:
        default = architectures[0]
        seeds = plan.picked_seeds()
        log(f"robustness: {default} drives {plan.unseen_laps} laps on each of the unseen seeds {seeds}")
        drives = drive_sim(out / default, tuple(seeds), plan.unseen_laps, plan.preset)
        summary["robustness"] = {
            "model": default,
            "seeds": seeds,
            "laps": plan.unseen_laps,
            "drives": {seed: {k: r[k] for k in DRIVE_FIELDS} for seed, r in drives.items()},
            "passed": passes(drives),
        }
    if set(bundles) >= set(TIMED_ARCHITECTURES):
        summary["latency"] = measure_latency({name: bundles[name] for name in TIMED_ARCHITECTURES})
    (out / "acceptance.json").write_text(json.dumps(summary, indent=2))
    return summary
