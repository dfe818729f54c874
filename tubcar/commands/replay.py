"""Replay a recorded tub through a model bundle: open loop, or closed loop on the recorded laps.

Open loop (default): every recorded frame goes through the pilot exactly as on the car;
prints steering/throttle MSE and MAE beside predicting the mean, and writes
timeline.png (predicted vs recorded), errors.png (worst frames by situation) and
replay.mp4 (frames with recorded = green and predicted = red steering). When the tub has
frames tagged in `tubcar studio` (tags.json), the steering error is also reported by tag.

    tubcar replay --tub data/tub_1 --model models/fast

Closed loop: the model drives a simulated car along the recorded path and sees recorded
frames warped to where its own driving put the car (PilotNet's evaluation). A real tub's
path comes from its pictures (visual odometry on the floor; dead reckoning of the labels
beside it as a cross-check), and the car steers as the recorded one did (its steering
response fitted on that path: scale per side, delay, slew; printed with its R^2). Prints
autonomy, interventions and lateral offsets beside two reference pilots on the same
replay (one that never steers, the lane-marking follower) and a sentence on what the
score means; writes closed_loop.mp4.

    tubcar replay --closed-loop --tub data/tub_1 --model models/fast

--json prints one JSON object with the figures (for scripts) instead of the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from car.config import load_config
from car.pilot import Pilot
from car.tub import Tub, TubError
from car.tub.ranges import parse_index_range
from evaluation.path import PATH_SOURCES
from evaluation.replay import (
    ClosedLoopConfig,
    camera_for_tub,
    closed_loop,
    open_loop,
    replay_track,
    road_half_width_m,
    warp_coverage,
)
from evaluation.tags import TAGS_FILE, FrameTags, error_by_tag
from evaluation.verdict import advice, reference_scores
from sim.vehicle import VehicleModel
from training.registry import DEFAULT_INDEX, append_score
from tubcar.errors import command_parser

CAMERA_FLAGS = {
    "camera_height": "height_m",
    "camera_pitch": "pitch_deg",
    "camera_fov": "fov_deg",
    "camera_forward": "forward_m",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("tubcar replay", __doc__)
    parser.add_argument("--tub", type=Path, required=True, help="tub folder to replay")
    parser.add_argument("--model", type=Path, required=True, help="model bundle (folder with model.json)")
    parser.add_argument("--out", type=Path, help="where PNG/MP4 go (default: runs/replay/<tub>-<model>)")
    parser.add_argument("--closed-loop", action="store_true", help="drive the recorded laps closed loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    parser.add_argument("--no-video", action="store_true", help="skip the MP4 (faster)")
    parser.add_argument(
        "--records",
        type=parse_index_range,
        metavar="START:STOP",
        help="replay only records with START <= _index < STOP (e.g. a held-out test block)",
    )
    parser.add_argument(
        "--worst", type=int, default=6, help="open loop: worst frames shown per situation (%(default)s)"
    )
    parser.add_argument("--config", type=Path, help="car config TOML: camera mounting, loop rate")
    parser.add_argument("--registry", type=Path, default=DEFAULT_INDEX, help="closed loop: models registry")
    camera = parser.add_argument_group(
        "camera (default: what a simulator tub recorded, else the car config's, else the Donkey car's)"
    )
    camera.add_argument("--camera-height", type=float, help="lens above the floor, metres")
    camera.add_argument("--camera-pitch", type=float, help="downward tilt, degrees")
    camera.add_argument("--camera-fov", type=float, help="horizontal field of view, degrees")
    camera.add_argument("--camera-forward", type=float, help="lens ahead of the rear axle, metres")
    loop = parser.add_argument_group("closed loop")
    loop.add_argument(
        "--max-offset",
        type=float,
        default=ClosedLoopConfig.max_offset_m,
        help="lateral offset from the recorded path that counts as an intervention, m (%(default)s)",
    )
    loop.add_argument(
        "--max-heading",
        type=float,
        default=ClosedLoopConfig.max_heading_deg,
        help="heading error that counts as an intervention, degrees (%(default)s)",
    )
    loop.add_argument(
        "--speed",
        choices=("recorded", "model"),
        default="recorded",
        help="recorded: the car drives the recorded speed (PilotNet); model: the pilot's throttle",
    )
    loop.add_argument(
        "--max-speed",
        type=float,
        default=VehicleModel.max_speed_mps,
        help="m/s at throttle 1: only when the path is dead-reckoned from the labels (%(default)s)",
    )
    loop.add_argument(
        "--fill-picture",
        action="store_true",
        help="also write fill.png: a recorded frame warped off the path, each fill (black, edge, neighbours)",
    )
    loop.add_argument(
        "--path",
        choices=PATH_SOURCES,
        default="auto",
        help="where the recorded path comes from: auto (a simulator tub's pose, else the pictures, "
        "else the labels), pictures (visual odometry, any pose ignored), labels (dead reckoning)",
    )
    return parser.parse_args(argv)


def record_range(args: argparse.Namespace):
    """`keep(record)` for --records, or None to replay every record."""
    if args.records is None:
        return None
    return lambda record: record["_index"] in args.records


def run_open_loop(args: argparse.Namespace, tub: Tub, pilot: Pilot, out: Path) -> dict:
    from evaluation import error_analysis as ea

    video = None if args.no_video else ea.ReplayVideo(out / "replay.mp4", fps=20.0, scale=2)

    def add_frame(frame, record, prediction):
        if video is not None:
            text = [f"#{record['_index']} rec {record['user/angle']:+.2f} pred {prediction[0]:+.2f}"]
            video.add(frame, record["user/angle"], prediction[0], text)

    result = open_loop(
        tub,
        pilot,
        on_frame=add_frame if video else None,
        keep=record_range(args),
        progress=lambda items: tqdm(
            items, total=len(tub), desc="open loop", unit="record", disable=args.json
        ),
    )
    metrics: dict[str, Any] = result.metrics()
    title = (
        f"{tub.path.name} through {args.model.name} ({pilot.card.architecture}, {pilot.card.quantization})"
    )
    files = {"timeline": ea.plot_timeline(result.recorded, result.predicted, out / "timeline.png", title)}
    labels = ea.situations(result.records, result.recorded[:, 0])
    groups = ea.error_by_situation(labels, result.recorded, result.predicted)
    worst = ea.worst_by_situation(labels, result.recorded, result.predicted, args.worst)
    frames = {
        name: [tub.load_image(result.records[k]) for k in positions] for name, positions in worst.items()
    }
    files["errors"] = ea.plot_gallery(
        frames,
        result.recorded,
        result.predicted,
        worst,
        [r["_index"] for r in result.records],
        groups,
        out / "errors.png",
        title=f"worst frames by situation: {title}",
    )
    if video:
        files["video"] = video.close()
    metrics["situations"] = [g.to_dict() for g in groups]
    tags = FrameTags.read(tub.path)
    if tags.frames:
        indexes = np.array([record["_index"] for record in result.records])
        metrics["tags"] = [
            g.to_dict() for g in error_by_tag(tags, indexes, result.recorded, result.predicted)
        ]
    metrics["files"] = {name: str(path) for name, path in files.items()}
    return metrics


def run_closed_loop(args: argparse.Namespace, tub: Tub, pilot: Pilot, out: Path, car_config) -> dict:
    from evaluation import error_analysis as ea

    flags = {field: getattr(args, flag) for flag, field in CAMERA_FLAGS.items()}
    camera = camera_for_tub(tub, car_config.camera.model_dump() if car_config else None, flags)
    vehicle = VehicleModel(max_speed_mps=args.max_speed)
    config = ClosedLoopConfig(
        max_offset_m=args.max_offset,
        max_heading_deg=args.max_heading,
        speed=args.speed,
        road_half_width_m=road_half_width_m(tub),
        path=args.path,
    )
    rate = car_config.loop.rate_hz if car_config else 20.0
    video = None if args.no_video else ea.ReplayVideo(out / "closed_loop.mp4", fps=rate, scale=2)
    keep = record_range(args)
    track = replay_track(
        tub,
        camera,
        vehicle,
        config,
        rate,
        keep=keep,
        progress=lambda items: tqdm(items, desc="path from the pictures", unit="frame", disable=args.json),
    )
    count = {"interventions": 0}
    reached = {r["_index"]: n for n, r in enumerate((r for r in tub.records() if not keep or keep(r)), 1)}
    bar = tqdm(total=len(reached), desc="closed loop", unit="record", disable=args.json)

    def on_step(frame, step):
        bar.update(reached.get(step.record_index, bar.n) - bar.n)
        count["interventions"] += step.intervention
        if video is None:
            return
        text = ea.closed_loop_caption(step, count["interventions"])
        video.add(frame, math.nan, step.angle, text, alert=step.intervention)

    result = closed_loop(track, pilot, camera, vehicle, config, rate_hz=rate, on_step=on_step)
    bar.close()
    metrics: dict[str, Any] = result.metrics()
    metrics["path_description"] = track.path.describe()
    metrics["warp_coverage"] = {
        "offset_m": config.max_offset_m,
        "real_floor": round(warp_coverage(track, camera, config), 3),
    }
    metrics["reference"] = reference_scores(track, camera, vehicle, config, rate)
    metrics["advice"] = advice(metrics["autonomy"], metrics["reference"])
    metrics["camera"] = camera.__dict__.copy()
    files = {}
    if video:
        files["video"] = video.close()
    if args.fill_picture:
        from evaluation.fill_picture import fill_picture

        files["fill_picture"] = fill_picture(track, camera, out / "fill.png")
    if files:
        metrics["files"] = {name: str(path) for name, path in files.items()}
    return metrics


def print_groups(groups: list[dict]) -> None:
    for group in groups:
        print(
            f"    {group['name']:17} {group['frames']:5} frames ({group['frame_share']:5.1%})  "
            f"MSE {group['steering_mse']:.4f}  share of error {group['error_share']:5.1%}"
        )


def print_summary(metrics: dict, closed: bool) -> None:
    if closed:
        print(
            f"closed loop over {metrics['records']} records ({metrics['path']} path, "
            f"{metrics['speed']} speed): {metrics['elapsed_s']:.1f} s driven"
        )
        for line in metrics["path_description"].splitlines():
            print(f"  {line}")
        coverage = metrics["warp_coverage"]
        rule = (
            "off the road (the recorded CTE plus the offset)"
            if metrics["intervention_rule"] == "road edge"
            else f"more than {coverage['offset_m']} m off the recorded path"
        )
        print(
            f"  the safety driver takes over {rule} or {metrics['max_heading_deg']:.0f} deg off its heading; "
            f"{coverage['offset_m']} m beside the path the pictures show {100 * coverage['real_floor']:.0f}% "
            "real floor (the rest is smooth fill)"
        )
        rows = [("model", metrics)] + [
            (f"{name.replace('_', ' ')} (reference)", figures)
            for name, figures in metrics["reference"].items()
        ]
        for name, figures in rows:
            print(
                f"  {name:26} autonomy {figures['autonomy']:.3f}   interventions {figures['interventions']:3}"
                f"   offset mean {figures['mean_offset']:.3f} m, max {figures['max_offset']:.3f} m"
            )
        print(f"  {metrics['advice']}")
    else:
        print(f"open loop over {metrics['frames']} frames ({metrics['skipped']} skipped)")
        for name in ("steering", "throttle"):
            mse, mae = metrics[f"{name}_mse"], metrics[f"{name}_mae"]
            mean_mse, mean_mae = metrics[f"baseline_{name}_mse"], metrics[f"baseline_{name}_mae"]
            print(
                f"  {name:8}  MSE {mse:.4f} (predict-the-mean {mean_mse:.4f})"
                f"   MAE {mae:.4f} (predict-the-mean {mean_mae:.4f})"
            )
        print("  steering error by situation:")
        print_groups(metrics["situations"])
        if metrics.get("tags"):
            print(f"  steering error by tag ({TAGS_FILE} beside the tub; a frame may have several tags):")
            print_groups(metrics["tags"])
    for path in metrics.get("files", {}).values():
        print(f"  wrote {path}")


def main(argv: list[str] | None = None) -> int | None:
    args = parse_args(argv)
    tub = Tub(args.tub)
    pilot = Pilot.load(args.model)
    car_config = load_config(args.config) if args.config else None
    out = args.out or Path("runs") / "replay" / f"{args.tub.resolve().name}-{args.model.resolve().name}"
    out.mkdir(parents=True, exist_ok=True)
    try:
        if args.closed_loop:
            metrics = run_closed_loop(args, tub, pilot, out, car_config)
        else:
            metrics = run_open_loop(args, tub, pilot, out)
    except (TubError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scored = (
        append_score(args.model, metrics, "replay", args.tub.name, args.registry)
        if args.closed_loop
        else None
    )
    if scored:
        print(f"registry: score appended to run {scored['scored_run']} in {args.registry}", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        print_summary(metrics, args.closed_loop)
    return 0
