"""Replay a recorded tub through a model bundle: open loop, or closed loop on the recorded laps.

Open loop (default): every recorded frame goes through the pilot exactly as on the car;
prints steering/throttle MSE and MAE beside predicting the mean, and writes
timeline.png (predicted vs recorded), errors.png (worst frames by situation) and
replay.mp4 (frames with recorded = green and predicted = red steering). When the tub has
frames tagged in `tubcar studio` (tags.json), the steering error is also reported by tag.

    tubcar replay --tub data/tub_1 --model models/fast

Closed loop: the model drives a simulated car along the recorded path and sees recorded
frames warped to where its own driving put the car (PilotNet's evaluation); prints
autonomy, interventions and lateral offsets, and writes closed_loop.mp4.

    tubcar replay --closed-loop --tub data/tub_1 --model models/fast

--json prints one JSON object with the figures (for scripts) instead of the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from car.bundle import BundleError
from car.config import ConfigError, load_config
from car.pilot import Pilot
from car.tub import Tub, TubError
from car.tub.ranges import parse_index_range
from evaluation.replay import ClosedLoopConfig, camera_for_tub, closed_loop, open_loop, road_half_width_m
from evaluation.tags import TAGS_FILE, FrameTags, error_by_tag
from sim.vehicle import VehicleModel

CAMERA_FLAGS = {
    "camera_height": "height_m",
    "camera_pitch": "pitch_deg",
    "camera_fov": "fov_deg",
    "camera_forward": "forward_m",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tubcar replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        help="m/s at throttle 1, for dead reckoning real tubs (%(default)s)",
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
        text = [f"#{record['_index']} rec {record['user/angle']:+.2f} pred {prediction[0]:+.2f}"]
        video.add(frame, record["user/angle"], prediction[0], text)

    result = open_loop(
        tub,
        pilot,
        on_frame=add_frame if video else None,
        keep=record_range(args),
        progress=lambda items: tqdm(items, desc="open loop", unit="record", disable=args.json),
    )
    metrics = result.metrics()
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
    )
    rate = car_config.loop.rate_hz if car_config else 20.0
    video = None if args.no_video else ea.ReplayVideo(out / "closed_loop.mp4", fps=rate, scale=2)
    count = {"interventions": 0}
    bar = tqdm(desc="closed loop", unit="step", disable=args.json)

    def on_step(frame, step):
        bar.update()
        count["interventions"] += step.intervention
        if video is None:
            return
        text = ea.closed_loop_caption(step, count["interventions"])
        video.add(frame, math.nan, step.angle, text, alert=step.intervention)

    result = closed_loop(
        tub, pilot, camera, vehicle, config, rate_hz=rate, on_step=on_step, keep=record_range(args)
    )
    bar.close()
    metrics = result.metrics()
    metrics["camera"] = camera.__dict__.copy()
    if video:
        metrics["files"] = {"video": str(video.close())}
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
        print(
            f"  autonomy {metrics['autonomy']:.3f}   interventions {metrics['interventions']}   "
            f"offset mean {metrics['mean_offset']:.3f} m, max {metrics['max_offset']:.3f} m   "
            f"heading error mean {metrics['mean_heading_error_deg']:.1f} deg"
        )
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
    try:
        tub = Tub(args.tub)
        pilot = Pilot.load(args.model)
        car_config = load_config(args.config) if args.config else None
    except (TubError, BundleError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        print_summary(metrics, args.closed_loop)
    return 0
