"""Does closed-loop replay of a recorded lap score models as the simulator itself does?

Records a held-out expert lap on a simulator track, trains models of clearly different
quality, then scores each one twice: driving the built-in simulator closed loop (the
ground truth: it renders what the car really sees) and replaying the recorded lap with
the flat-ground warp (`tubcar replay --closed-loop`). The two must agree: the same
verdicts, and the same ranking (Spearman's rank correlation of each figure).

As if real: the same recorded lap replayed with its pose ignored, the path taken from its
pictures (visual odometry, as for a real tub) and a real tub's kind of intervention rule
(an offset from the recorded path, set to the simulator's road edge: half the road
width plus its margin); it too must give the simulator's verdicts. The odometry's
path is checked against the recorded pose: median drift per metre travelled.

Pilots: TFLite bundles trained here: `well-trained` (up to `epochs`, early stopping),
`under-trained` (one epoch on a fifth of the data), `biased` (the well-trained model with
+0.35 added to its steering in model.json: a mis-set trim), `untrained` (random
weights: one epoch at a learning rate of 1e-9); and the reference pilots of
`evaluation.reference` (follows the yellow line; with a steering trim; steering away).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from car.bundle import load_card, save_card
from car.pilot import Pilot
from car.tub import Tub
from evaluation.path import PathCheck, compare_paths, recorded_path
from evaluation.reference import StraightPilot, YellowLinePilot
from evaluation.replay import (
    ClosedLoopConfig,
    ReplayTrack,
    camera_for_tub,
    closed_loop,
    replay_track,
    road_half_width_m,
)
from evaluation.scoring import camera_pilot, score
from evaluation.verdict import verdict
from evaluation.warp import warp_frame
from sim import Renderer, Simulation, Track, VehicleModel, VehicleState, record_tub
from training.data import RecordFilter
from training.fit import FitConfig
from training.flags import flag
from training.train import TrainOptions, train

BIAS = 0.35  # steering trim added to the `biased` model
MODELS = ("well-trained", "under-trained", "untrained", "biased")
# Offsets from the recorded path (m, degrees) at which warped and rendered frames are compared.
WARP_OFFSETS = ((0.1, 0), (0.2, 0), (0.3, 0), (0.4, 0), (0, 10), (0, 20), (0.2, 10))
TABLE_COLUMNS = (
    "model",
    "sim_autonomy",
    "replay_autonomy",
    "sim_interventions_per_min",
    "replay_interventions_per_min",
    "sim_mean_cte",
    "replay_mean_cte",
    "replay_model_speed_autonomy",
    "as_real_autonomy",
    "as_real_mean_offset",
    "sim_verdict",
    "as_real_verdict",
)


@dataclass(frozen=True, kw_only=True)
class ValidationPlan:
    """What to record, train and drive; each field is a flag of `tubcar replay-validation`."""

    track: int = flag(1, "track seed scored in both ways")
    train_laps: int = flag(8, "expert laps recorded for training")
    epochs: int = flag(30, "most epochs of the well-trained model")
    sim_laps: int = flag(2, "laps each model drives in the simulator")
    noise: float = flag(0.3, "expert steering noise of the training laps")
    replay_noise: float = flag(
        0.1, "expert steering noise of the replayed lap (a human's lap wanders a little)"
    )


def run_validation(plan: ValidationPlan, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Record, train, score every pilot both ways; writes validation.json and validation.md.

    Reuses the tubs and models an earlier run left in `out`.
    """
    out.mkdir(parents=True, exist_ok=True)
    track = Track.from_seed(plan.track)
    train_tub, replay_tub = record_tubs(plan, track, out / "tubs")
    log(
        f"track {track.name}: {track.length:.1f} m; training tub {len(Tub(train_tub))} records, "
        f"replayed lap {len(Tub(replay_tub))} records"
    )
    bundles = train_models(out / "models", train_tub, plan.epochs)
    pilots: dict[str, Any] = {name: Pilot.load(bundle) for name, bundle in bundles.items()}
    pilots.update(reference_pilots())
    results = validate(track, replay_tub, pilots, plan.sim_laps, log)
    results["warp_fidelity"] = warp_fidelity(track, replay_tub, bundles["well-trained"])
    (out / "validation.json").write_text(json.dumps(results, indent=2))
    (out / "validation.md").write_text(
        table(results["rows"])
        + "\n\n"
        + json.dumps({**results["agreement"], **results["as_real"]}, indent=2)
        + "\n\n"
        + fidelity_table(results["warp_fidelity"])
        + "\n"
    )
    return results


def validate(
    track: Track, replay_tub: Path, pilots: dict[str, Any], sim_laps: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every pilot in the simulator, in replay and in replay as if real; how they agree."""
    tub = Tub(replay_tub)
    camera = camera_for_tub(tub)
    with_pose = replay_track(tub, camera, config=ClosedLoopConfig(road_half_width_m=road_half_width_m(tub)))
    as_real = replay_track(tub, camera, config=ClosedLoopConfig(path="pictures"))
    rows = []
    for name, pilot in pilots.items():
        rows.append({"model": name, **compare(track, with_pose, as_real, pilot, sim_laps)})
        log(json.dumps(rows[-1]))
    return {"rows": rows, "agreement": agree(rows), "as_real": as_real_summary(rows, odometry_error(as_real))}


def record_tubs(plan: ValidationPlan, track: Track, folder: Path) -> tuple[Path, Path]:
    """The training laps and the replayed lap (a held-out lap: another noise seed, never trained on)."""
    train_tub = folder / "train"
    replay_tub = folder / f"replay_noise{plan.replay_noise:g}"
    if not train_tub.exists():
        record_tub(Simulation(track), train_tub, laps=plan.train_laps, noise=plan.noise, seed=1)
    if not replay_tub.exists():
        record_tub(Simulation(track), replay_tub, laps=1, noise=plan.replay_noise, seed=99)
    return train_tub, replay_tub


def train_models(folder: Path, train_tub: Path, epochs: int) -> dict[str, Path]:
    """The models of different quality, as bundles in `folder` (kept from an earlier run)."""
    if all((folder / name / "model.json").exists() for name in MODELS):
        return {name: folder / name for name in MODELS}
    base = TrainOptions(architecture="fast", quantization="float32", fit=FitConfig(epochs=epochs, verbose=0))
    records = len(Tub(train_tub))
    under = replace(
        base, fit=replace(base.fit, epochs=1), rules=RecordFilter(index_range=(0, max(200, records // 5)))
    )
    untrained = replace(base, fit=replace(base.fit, epochs=1, lr=1e-9))
    bundles = {}
    for name, options in (("well-trained", base), ("under-trained", under), ("untrained", untrained)):
        bundles[name] = train([train_tub], folder / name, options, log=lambda *_: None).out
    biased = folder / "biased"
    shutil.copytree(bundles["well-trained"], biased, dirs_exist_ok=True)
    card = load_card(biased)
    card.output("angle").offset += BIAS
    save_card(card, biased)
    bundles["biased"] = biased
    return bundles


def reference_pilots() -> dict[str, Any]:
    return {
        "never steers (reference)": StraightPilot(),
        "line follower (reference)": YellowLinePilot(),
        "line follower, trim +0.15 (reference)": YellowLinePilot(bias=0.15),
        "steers away from the line (reference)": YellowLinePilot(sign=-1.0),
    }


def compare(
    track: Track, with_pose: ReplayTrack, as_real: ReplayTrack, pilot: Any, sim_laps: int
) -> dict[str, Any]:
    """One pilot's figures in the simulator, in replay (at the recorded and at its own
    speed) and in replay as if real (path from the pictures, recorded speed)."""
    sim = sim_score(track, pilot, sim_laps)
    recorded_speed = replay_score(with_pose, pilot, "recorded")
    model_speed = replay_score(with_pose, pilot, "model")
    real = replay_score(as_real, pilot, "recorded", max_offset_m=road_half_width_m(as_real.tub))
    return {
        "sim_autonomy": sim["autonomy"],
        "sim_interventions_per_min": per_minute(sim),
        "sim_mean_cte": sim["mean_cte"],
        "replay_autonomy": recorded_speed["autonomy"],
        "replay_interventions_per_min": per_minute(recorded_speed),
        "replay_mean_cte": recorded_speed["mean_cte"],
        "replay_mean_offset": recorded_speed["mean_offset"],
        "replay_model_speed_autonomy": model_speed["autonomy"],
        "replay_model_speed_interventions_per_min": per_minute(model_speed),
        "as_real_autonomy": real["autonomy"],
        "as_real_interventions_per_min": per_minute(real),
        "as_real_mean_offset": real["mean_offset"],
        "sim_verdict": verdict(sim["autonomy"]),
        "as_real_verdict": verdict(real["autonomy"]),
    }


def per_minute(result: dict[str, Any]) -> float:
    return 60 * result["interventions"] / result["elapsed_s"]


def sim_score(track: Track, pilot: Any, laps: int) -> dict[str, Any]:
    """The ground truth: the pilot drives the simulator, seeing rendered frames."""
    return score(camera_pilot(pilot.run), Simulation(track), laps=laps)


def replay_score(
    track: ReplayTrack, pilot: Any, speed: str, max_offset_m: float | None = None
) -> dict[str, Any]:
    """Closed-loop replay of the recorded lap, as tubcar replay --closed-loop does: the
    simulator's road rule where the path is the recorded pose, else an offset from the
    path (`max_offset_m`: as if real, the road's half width and margin, the simulator's
    rule measured from the recorded path instead of the centre line)."""
    road = road_half_width_m(track.tub) if track.path.cte is not None else None
    config = ClosedLoopConfig(road_half_width_m=road, speed=speed)
    if max_offset_m is not None:
        config = replace(config, max_offset_m=max_offset_m)
    return closed_loop(track, pilot, camera_for_tub(track.tub), config=config).metrics()


def odometry_error(as_real: ReplayTrack) -> PathCheck:
    """How far the path from the pictures drifts from the recorded pose, per metre."""
    truth = recorded_path(as_real.records, VehicleModel())
    return compare_paths(as_real.path.poses, truth.poses[as_real.path.positions])


def as_real_summary(rows: list[dict[str, Any]], odometry: PathCheck) -> dict[str, Any]:
    """The keys of `tubcar replay-validation --json`."""
    return {
        "pilots": len(rows),
        "as_real_agree": sum(row["sim_verdict"] == row["as_real_verdict"] for row in rows),
        "as_real_spearman_autonomy": rank_correlation(rows, "sim_autonomy", "as_real_autonomy"),
        "as_real_spearman_mean_offset": rank_correlation(rows, "sim_mean_cte", "as_real_mean_offset"),
        "vo_position_error_m_per_m": round(odometry.position_m_per_m, 4),
        "vo_heading_error_deg_per_m": round(odometry.heading_deg_per_m, 3),
    }


def rank_correlation(rows: list[dict[str, Any]], first: str, second: str) -> float:
    """Spearman's rank correlation of two figures over the pilots; nan when either has no
    ranking (all equal: spearmanr would warn and say nan)."""
    a, b = [row[first] for row in rows], [row[second] for row in rows]
    if len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def agree(rows: list[dict[str, Any]]) -> dict[str, float]:
    """How well replay ranks the pilots as the simulator does (Spearman), and the autonomy gap."""
    return {
        "spearman_autonomy": rank_correlation(rows, "sim_autonomy", "replay_autonomy"),
        "spearman_interventions_per_min": rank_correlation(
            rows, "sim_interventions_per_min", "replay_interventions_per_min"
        ),
        "spearman_mean_cte": rank_correlation(rows, "sim_mean_cte", "replay_mean_cte"),
        "mean_abs_autonomy_difference": float(
            np.mean([abs(row["sim_autonomy"] - row["replay_autonomy"]) for row in rows])
        ),
    }


def warp_fidelity(track: Track, tub: Path, bundle: Path, every: int = 40) -> list[dict[str, Any]]:
    """How the model steers on warped recorded frames vs frames rendered at the same pose.

    The simulator can render the truth at any pose, so this measures directly how far
    from the recorded path the flat-ground warp still shows the model what it would see.
    """
    recorded = Tub(tub)
    camera = camera_for_tub(recorded)
    renderer, pilot = Renderer(track, camera), Pilot.load(bundle)
    records = list(recorded.records())[every // 2 :: every]
    rows = []
    for lateral, heading_deg in WARP_OFFSETS:
        differences = []
        for sign in (1.0, -1.0):
            for record in records:
                x, y, yaw = record["sim/x"], record["sim/y"], record["sim/yaw"]
                dy, dyaw = sign * lateral, sign * np.radians(heading_deg)
                truth = renderer.render(VehicleState(x - np.sin(yaw) * dy, y + np.cos(yaw) * dy, yaw + dyaw))
                warped = warp_frame(recorded.load_image(record), camera, dy, dyaw)
                differences.append(abs(pilot.run(warped)[0] - pilot.run(truth)[0]))
        rows.append(
            {
                "lateral_m": lateral,
                "heading_deg": heading_deg,
                "frames": len(differences),
                "mean_abs_steering_difference": float(np.mean(differences)),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The pilots' figures, simulator beside replay, as a Markdown table."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for row in rows:
        cells = (f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in TABLE_COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fidelity_table(fidelity: list[dict[str, Any]]) -> str:
    lines = [
        "| offset m | heading deg | frames | mean abs steering difference, warped vs rendered |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| ±{r['lateral_m']:g} | ±{r['heading_deg']:g} | {r['frames']} | "
        f"{r['mean_abs_steering_difference']:.3f} |"
        for r in fidelity
    ]
    return "\n".join(lines)
