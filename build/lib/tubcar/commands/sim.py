"""The built-in simulator: record expert tubs, score a model closed-loop, draw a track.

  tubcar sim record --track 3 --laps 2 --out data/sim3 [--noise 0.3]
  tubcar sim drive  --model models/pilot --track 11 --laps 5 [--json] [--video drive.mp4]
  tubcar sim drive  --model expert --track 11 --laps 2
  tubcar sim show   --track 3 --out track3.png [--save track3.json]
  tubcar sim compare --tub ../shared/data/tub --track 0 --out real_vs_sim.png

A track is an integer seed or a track file (JSON, see `Track.save`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from car.contracts import FramePolicy
from evaluation.scoring import score
from sim import ImageEffects, Observation, Simulation, Track, record_tub
from sim.parts import ExpertPilot


def track_argument(value: str) -> Track:
    """An integer seed, or the path of a track file."""
    if value.isdigit():
        return Track.from_seed(int(value))
    try:
        return Track.load(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_camera_effects(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("camera imperfections")
    group.add_argument("--pixel-noise", type=float, default=0.0, help="std of per-pixel noise, 0-255 scale")
    group.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma, pixels")
    group.add_argument("--exposure", type=float, default=0.0, help="std of the drifting exposure gain")


def make_simulation(args: argparse.Namespace) -> Simulation:
    effects = ImageEffects(noise=args.pixel_noise, blur=args.blur, exposure=args.exposure)
    return Simulation(args.track, effects=effects, seed=args.seed)


def record(args: argparse.Namespace) -> None:
    sim = make_simulation(args)
    summary = record_tub(sim, args.out, laps=args.laps, noise=args.noise, seed=args.seed)
    print(
        f"recorded {summary['records']} records, {summary['laps']} laps of {summary['track']} "
        f"({sim.track.length:.1f} m) with steering noise {args.noise} into {args.out}; "
        f"interventions {summary['interventions']}"
    )


def drive(args: argparse.Namespace) -> None:
    sim = make_simulation(args)
    pilot: FramePolicy
    if args.model == "expert":
        pilot = ExpertPilot(sim)
    else:
        from car.pilot import Pilot  # loads the TFLite runtime only when a model drives

        pilot = Pilot.load(args.model)
    video = None
    if args.video:
        from evaluation.video import DriveVideo

        video = DriveVideo(args.video, sim)
    bar = tqdm(
        total=args.laps,
        desc=f"drive {sim.track.name}",
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n:.2f}/{total} laps [{elapsed}<{remaining}]",
    )

    def on_step(observation: Observation) -> None:
        bar.update(min(max(observation.progress, 0.0), args.laps) - bar.n)
        if video:
            video.write(observation)

    result = score(
        pilot, sim, laps=args.laps, throttle=args.throttle, time_limit_s=args.time_limit, on_step=on_step
    )
    bar.close()
    result["model"] = args.model
    if video:
        result["video"] = str(video.close())
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}: {value}")


def show(args: argparse.Namespace) -> None:
    from sim.pictures import save_track_picture

    track = args.track
    out = save_track_picture(track, args.out)
    print(f"drew {track.name} ({track.length:.1f} m, width {track.width_m:.2f} m) to {out}")
    if args.save:
        print(f"saved the track file {track.save(args.save)}")


def compare(args: argparse.Namespace) -> None:
    from car.tub import Tub
    from sim.pictures import save_camera_comparison

    tub = Tub(args.tub)
    records = list(tub.records())
    if not records:
        raise SystemExit(f"{args.tub}: the tub has no readable records")
    picked = records[:: max(1, len(records) // args.frames)][: args.frames]
    real = [frame for record in picked if (frame := tub.load_image_or_skip(record)) is not None]
    for problem in tub.problems:
        print(f"skipped {problem}")
    if not real:
        raise SystemExit(f"{args.tub}: none of the picked frames decodes")
    out = save_camera_comparison(real, args.track, args.out)
    print(f"compared {len(real)} frames of {args.tub} with {args.track.name} in {out}")


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    rec = commands.add_parser("record", help="let the expert drive and record a tub")
    rec.add_argument("--track", type=track_argument, required=True, help="seed or track file")
    rec.add_argument("--laps", type=int, default=2)
    rec.add_argument("--out", type=Path, required=True, help="tub folder (created or appended to)")
    rec.add_argument("--noise", type=float, default=0.3, help="expert steering noise (std, steering units)")
    rec.add_argument("--seed", type=int, default=0, help="random seed of the noise and camera effects")
    add_camera_effects(rec)
    rec.set_defaults(run=record)

    drv = commands.add_parser("drive", help="drive a model (or the expert) and score it")
    drv.add_argument("--model", required=True, help="model bundle (folder or .tflite) or 'expert'")
    drv.add_argument("--track", type=track_argument, required=True, help="seed or track file")
    drv.add_argument("--laps", type=int, default=3)
    drv.add_argument("--throttle", type=float, default=None, help="constant throttle instead of the model's")
    drv.add_argument("--time-limit", type=float, default=None, help="simulated seconds before giving up")
    drv.add_argument("--video", type=Path, help="write an MP4 of the drive")
    drv.add_argument("--json", action="store_true", help="print one JSON object")
    drv.add_argument("--seed", type=int, default=0, help="random seed of the camera effects")
    add_camera_effects(drv)
    drv.set_defaults(run=drive)

    shw = commands.add_parser("show", help="draw a track and camera views along it")
    shw.add_argument("--track", type=track_argument, required=True, help="seed or track file")
    shw.add_argument("--out", type=Path, required=True, help="PNG to write")
    shw.add_argument("--save", type=Path, help="also write the track file (JSON)")
    shw.set_defaults(run=show)

    cmp = commands.add_parser("compare", help="real camera frames above simulated ones, as a PNG")
    cmp.add_argument("--tub", type=Path, required=True, help="a real tub")
    cmp.add_argument("--track", type=track_argument, default="0", help="seed or track file")
    cmp.add_argument("--frames", type=int, default=5, help="frames per row")
    cmp.add_argument("--out", type=Path, required=True, help="PNG to write")
    cmp.set_defaults(run=compare)

    args = parser.parse_args(argv)
    args.run(args)
    return None
