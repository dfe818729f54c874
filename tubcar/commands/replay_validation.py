"""Does closed-loop replay of a recorded lap score models as the simulator itself does?

Records a held-out expert lap on a simulator track, trains models of clearly different
quality, then scores each one twice: driving the built-in simulator closed loop (the
ground truth: it renders what the car really sees) and replaying the recorded lap with
the flat-ground warp (`tubcar replay --closed-loop`). Prints the table and writes
it to --out as JSON and Markdown.

Pilots: TFLite bundles trained here: `well-trained` (up to --epochs, early stopping),
`under-trained` (one epoch on a fifth of the data), `biased` (the well-trained model with
+0.35 added to its steering in model.json: a mis-set trim), `untrained` (random
weights: one epoch at a learning rate of 1e-9); and classical references of known
quality (`YellowLinePilot`: follows the yellow line; with a steering trim; steering away).

    tubcar replay-validation --out runs/replay_validation
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from car.bundle import load_card, save_card
from car.pilot import Pilot
from car.tub import Tub
from evaluation.replay import (
    ClosedLoopConfig,
    YellowLinePilot,
    camera_for_tub,
    closed_loop,
    road_half_width_m,
)
from evaluation.scoring import camera_pilot, score
from sim import Simulation, Track, record_tub

BIAS = 0.35


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tubcar replay-validation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/replay_validation"))
    parser.add_argument("--track", type=int, default=1, help="track seed scored in both ways (%(default)s)")
    parser.add_argument("--train-laps", type=int, default=8, help="expert laps recorded for training")
    parser.add_argument("--epochs", type=int, default=30, help="most epochs of the well-trained model")
    parser.add_argument("--sim-laps", type=int, default=2, help="laps each model drives in the simulator")
    parser.add_argument("--noise", type=float, default=0.3, help="expert steering noise of the training laps")
    parser.add_argument(
        "--replay-noise",
        type=float,
        default=0.1,
        help="expert steering noise of the replayed lap (a human's lap wanders a little)",
    )
    return parser.parse_args(argv)


def train_models(args: argparse.Namespace, train_tub: Path) -> dict[str, Path]:
    """The models of different quality, as bundles under out/models."""
    from dataclasses import replace

    from training.data import RecordFilter
    from training.fit import FitConfig
    from training.train import TrainOptions, train

    models = args.out / "models"
    names = ("well-trained", "under-trained", "untrained", "biased")
    if all((models / name / "model.json").exists() for name in names):
        return {name: models / name for name in names}  # trained by an earlier run
    base = TrainOptions(
        architecture="fast", quantization="float32", fit=FitConfig(epochs=args.epochs, verbose=0)
    )
    bundles = {}
    bundles["well-trained"] = train([train_tub], models / "well-trained", base, log=lambda *_: None).out
    records = len(Tub(train_tub))
    under = replace(
        base, fit=replace(base.fit, epochs=1), rules=RecordFilter(index_range=(0, max(200, records // 5)))
    )
    bundles["under-trained"] = train([train_tub], models / "under-trained", under, log=lambda *_: None).out
    untrained = replace(base, fit=replace(base.fit, epochs=1, lr=1e-9))
    bundles["untrained"] = train([train_tub], models / "untrained", untrained, log=lambda *_: None).out
    biased = models / "biased"
    shutil.copytree(bundles["well-trained"], biased, dirs_exist_ok=True)
    card = load_card(biased)
    card.output("angle").offset += BIAS
    save_card(card, biased)
    bundles["biased"] = biased
    return bundles


def reference_pilots() -> dict[str, YellowLinePilot]:
    return {
        "line follower (reference)": YellowLinePilot(),
        "line follower, trim +0.15 (reference)": YellowLinePilot(bias=0.15),
        "steers away from the line (reference)": YellowLinePilot(sign=-1.0),
    }


def sim_score(track: Track, pilot, laps: int) -> dict:
    """The ground truth: the pilot drives the simulator, seeing rendered frames."""
    return score(camera_pilot(pilot.run), Simulation(track), laps=laps)


def replay_score(tub: Path, pilot, speed: str) -> dict:
    """Closed-loop replay of the recorded lap, as tubcar replay --closed-loop does."""
    recorded = Tub(tub)
    config = ClosedLoopConfig(road_half_width_m=road_half_width_m(recorded), speed=speed)
    return closed_loop(recorded, pilot, camera_for_tub(recorded), config=config).metrics()


def warp_fidelity(track: Track, tub: Path, bundle: Path, every: int = 40) -> list[dict]:
    """How the model steers on warped recorded frames vs frames rendered at the same pose.

    The simulator can render the truth at any pose, so this measures directly how far
    from the recorded path the flat-ground warp still shows the model what it would see.
    """
    from evaluation.warp import warp_frame
    from sim import Renderer, VehicleState

    recorded = Tub(tub)
    camera = camera_for_tub(recorded)
    renderer, pilot = Renderer(track, camera), Pilot.load(bundle)
    records = list(recorded.records())[every // 2 :: every]
    rows = []
    for lateral, heading_deg in ((0.1, 0), (0.2, 0), (0.3, 0), (0.4, 0), (0, 10), (0, 20), (0.2, 10)):
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


def spearman(a: list[float], b: list[float]) -> float:
    """Rank correlation (ties get their mean rank)."""

    def ranks(values: list[float]) -> np.ndarray:
        values = np.asarray(values)
        order = values.argsort()
        result = np.empty(len(values))
        result[order] = np.arange(len(values))
        for value in np.unique(values):
            result[values == value] = result[values == value].mean()
        return result

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv: list[str] | None = None) -> int | None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    track = Track.from_seed(args.track)
    train_tub = args.out / "tubs" / "train"
    replay_tub = args.out / "tubs" / f"replay_noise{args.replay_noise:g}"
    if not train_tub.exists():
        record_tub(Simulation(track), train_tub, laps=args.train_laps, noise=args.noise, seed=1)
    if not replay_tub.exists():  # a held-out lap: another noise seed, never trained on
        record_tub(Simulation(track), replay_tub, laps=1, noise=args.replay_noise, seed=99)
    print(
        f"track {track.name}: {track.length:.1f} m; training tub {len(Tub(train_tub))} records, "
        f"replayed lap {len(Tub(replay_tub))} records"
    )
    pilots = {name: Pilot.load(bundle) for name, bundle in train_models(args, train_tub).items()}
    pilots.update(reference_pilots())

    rows = []
    for name, pilot in pilots.items():
        sim = sim_score(track, pilot, args.sim_laps)
        recorded_speed = replay_score(replay_tub, pilot, "recorded")
        model_speed = replay_score(replay_tub, pilot, "model")
        rows.append(
            {
                "model": name,
                "sim_autonomy": sim["autonomy"],
                "sim_interventions_per_min": 60 * sim["interventions"] / sim["elapsed_s"],
                "sim_mean_cte": sim["mean_cte"],
                "replay_autonomy": recorded_speed["autonomy"],
                "replay_interventions_per_min": 60
                * recorded_speed["interventions"]
                / recorded_speed["elapsed_s"],
                "replay_mean_cte": recorded_speed["mean_cte"],
                "replay_mean_offset": recorded_speed["mean_offset"],
                "replay_model_speed_autonomy": model_speed["autonomy"],
                "replay_model_speed_interventions_per_min": 60
                * model_speed["interventions"]
                / model_speed["elapsed_s"],
            }
        )
        print(json.dumps(rows[-1]))

    agreement = {
        "spearman_autonomy": spearman(
            [r["sim_autonomy"] for r in rows], [r["replay_autonomy"] for r in rows]
        ),
        "spearman_interventions_per_min": spearman(
            [r["sim_interventions_per_min"] for r in rows], [r["replay_interventions_per_min"] for r in rows]
        ),
        "spearman_mean_cte": spearman(
            [r["sim_mean_cte"] for r in rows], [r["replay_mean_cte"] for r in rows]
        ),
        "mean_abs_autonomy_difference": float(
            np.mean([abs(r["sim_autonomy"] - r["replay_autonomy"]) for r in rows])
        ),
    }
    columns = [
        "model",
        "sim_autonomy",
        "replay_autonomy",
        "sim_interventions_per_min",
        "replay_interventions_per_min",
        "sim_mean_cte",
        "replay_mean_cte",
        "replay_model_speed_autonomy",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
            + " |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    print("\nagreement: " + ", ".join(f"{k} {v:.3f}" for k, v in agreement.items()))
    fidelity = warp_fidelity(track, replay_tub, args.out / "models" / "well-trained")
    fidelity_lines = [
        "| offset m | heading deg | frames | mean abs steering difference, warped vs rendered |",
        "|---|---|---|---|",
    ]
    fidelity_lines += [
        f"| ±{r['lateral_m']:g} | ±{r['heading_deg']:g} | {r['frames']} | "
        f"{r['mean_abs_steering_difference']:.3f} |"
        for r in fidelity
    ]
    print("\nwarp fidelity (well-trained model):\n" + "\n".join(fidelity_lines))
    (args.out / "validation.json").write_text(
        json.dumps({"rows": rows, "agreement": agreement, "warp_fidelity": fidelity}, indent=2)
    )
    (args.out / "validation.md").write_text(
        table + "\n\n" + json.dumps(agreement, indent=2) + "\n\n" + "\n".join(fidelity_lines) + "\n"
    )
    print(f"wrote {args.out / 'validation.md'}")
    return 0
