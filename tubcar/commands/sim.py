"""The built-in simulator: record expert tubs, score a model closed-loop, draw a track.

  tubcar sim record --track 3 --laps 2 --out data/sim3 [--noise 0.3]
  tubcar sim record --track 3 --preset warehouse --out data/wh3      # the real track's kind, right lane
  tubcar sim drive  --model models/pilot --track 11 --laps 5 [--json] [--video drive.mp4]
  tubcar sim drive  --model expert --track 11 --laps 2 [--lane right --lane-offset 0.3 --corner-cut 0.7]
  tubcar sim show   --track 3 --out track3.png [--save track3.json]
  tubcar sim compare --tub ../shared/data/tub --preset warehouse --track 2 --out real_vs_sim.png

A track is an integer seed (drawn from `--preset`'s ranges: mixed or warehouse) or a track
file (JSON, see `Track.save`). The expert drives the preset's lane and line unless
`--lane/--lane-offset/--corner-cut` say otherwise; the camera effects are the preset's
unless `--pixel-noise/--blur/--exposure` say otherwise. Camera mounting, lens and steering
scale come from the car config (`--config`; default: the real Donkey car's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from car.config import ConfigError, load_config
from car.contracts import FramePolicy
from evaluation.scoring import score
from sim import CameraModel, ImageEffects, Observation, Simulation, Track, VehicleModel, presets, record_tub
from sim.expert import LANES
from sim.parts import ExpertPilot
from sim.presets import PRESETS, get_preset
from training.registry import DEFAULT_INDEX, append_score
from tubcar.errors import command_parser


def fail(message: str) -> NoReturn:
    """A usage error: the message on stderr, exit status 2 (as argparse's own)."""
    print(f"tubcar sim: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def track_of(args: argparse.Namespace) -> Track:
    """`--track`: an integer seed of `--preset` (on `--floor` if given), or the path of a track file."""
    if args.track.isdigit():
        return Track.from_seed(int(args.track), args.preset, args.floor)
    if args.floor is not None:
        fail("--floor lays a seeded track on another floor; a track file keeps its own look")
    try:
        return Track.load(args.track)
    except ValueError as err:
        fail(str(err))


def add_floor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--floor",
        type=int,
        metavar="N",
        help="lay the seed's track on the preset's floor N (default: the seed's own); mixed: "
        + ", ".join(f"{n} {name}" for n, (name, _) in enumerate(get_preset("mixed").look.floors)),
    )


def add_world_arguments(parser: argparse.ArgumentParser, track_default: str | None = None) -> None:
    """The track, its kind, the car config and the expert's lane (flags shared by the commands)."""
    parser.add_argument(
        "--track", required=track_default is None, default=track_default, help="seed or track file"
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="mixed",
        help="kind of track a seed draws (default: mixed)",
    )
    add_floor_argument(parser)
    parser.add_argument(
        "--config", type=Path, help="car TOML: camera mounting, lens, steering scale (default: the defaults)"
    )
    driver = parser.add_argument_group("the expert's line (default: the preset's driver)")
    driver.add_argument(
        "--lane", choices=LANES, help="centre straddles the yellow line; right/left keep a lane"
    )
    driver.add_argument(
        "--lane-offset", type=float, metavar="M", help="lane middle from the yellow line (default: road / 4)"
    )
    driver.add_argument(
        "--corner-cut", type=float, metavar="M2", help="m towards the inside per 1/m of curve"
    )


def add_camera_effects(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("camera imperfections (default: the preset's)")
    group.add_argument("--pixel-noise", type=float, help="std of per-pixel noise, 0-255 scale")
    group.add_argument("--blur", type=float, help="Gaussian blur sigma, pixels")
    group.add_argument("--exposure", type=float, help="std of the drifting exposure gain")


def driver_options(args: argparse.Namespace) -> dict:
    """The expert's options: the preset's driver, with the flags given on top."""
    return presets.driver_options(args.preset, args.lane, args.lane_offset, args.corner_cut)


def make_simulation(args: argparse.Namespace) -> Simulation:
    """The simulation the flags describe: track, preset effects, the car config's camera and steering."""
    try:
        config = load_config(args.config)
    except ConfigError as err:
        fail(str(err))
    preset = get_preset(args.preset).effects
    effects = ImageEffects(
        noise=preset.noise if args.pixel_noise is None else args.pixel_noise,
        blur=preset.blur if args.blur is None else args.blur,
        exposure=preset.exposure if args.exposure is None else args.exposure,
    )
    return Simulation(
        track_of(args),
        VehicleModel.from_config(config.steering),
        CameraModel.from_config(config.camera),
        effects=effects,
        seed=args.seed,
    )


def record(args: argparse.Namespace) -> None:
    sim = make_simulation(args)
    driver = driver_options(args)
    summary = record_tub(sim, args.out, laps=args.laps, noise=args.noise, seed=args.seed, **driver)
    print(
        f"recorded {summary['records']} records, {summary['laps']} laps of {summary['track']} "
        f"({sim.track.length:.1f} m) in the {driver['lane']} lane with steering noise {args.noise} "
        f"into {args.out}; interventions {summary['interventions']}"
    )


def drive(args: argparse.Namespace) -> None:
    sim = make_simulation(args)
    pilot: FramePolicy
    if args.model == "expert":
        pilot = ExpertPilot(sim, **driver_options(args))
    else:
        from car.pilot import Pilot  # loads the TFLite runtime only when a model drives

        pilot = Pilot.load(args.model)
    video = None
    if args.video:
        from evaluation.video import DriveVideo

        video = DriveVideo(args.video, sim, laps=args.laps)
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
    if args.model != "expert" and (
        scored := append_score(args.model, result, "sim", sim.track.name, args.registry)
    ):
        print(f"registry: score appended to run {scored['scored_run']} in {args.registry}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}: {value}")


def show(args: argparse.Namespace) -> None:
    from sim.pictures import save_track_picture

    track = track_of(args)
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
    sim = make_simulation(args)
    out = save_camera_comparison(
        real, sim.track, args.out, driver=driver_options(args), effects=sim.effects, camera=sim.camera
    )
    print(f"compared {len(real)} frames of {args.tub} with {sim.track.name} in {out}")


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar sim", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    rec = commands.add_parser("record", help="let the expert drive and record a tub")
    add_world_arguments(rec)
    rec.add_argument("--laps", type=int, default=2)
    rec.add_argument("--out", type=Path, required=True, help="tub folder (created or appended to)")
    rec.add_argument("--noise", type=float, default=0.3, help="expert steering noise (std, steering units)")
    rec.add_argument("--seed", type=int, default=0, help="random seed of the noise and camera effects")
    add_camera_effects(rec)
    rec.set_defaults(run=record)

    drv = commands.add_parser("drive", help="drive a model (or the expert) and score it")
    drv.add_argument("--model", required=True, help="model bundle (folder or .tflite) or 'expert'")
    add_world_arguments(drv)
    drv.add_argument("--laps", type=int, default=3)
    drv.add_argument("--throttle", type=float, default=None, help="constant throttle instead of the model's")
    drv.add_argument("--time-limit", type=float, default=None, help="simulated seconds before giving up")
    drv.add_argument("--video", type=Path, help="write an MP4 of the drive")
    drv.add_argument("--json", action="store_true", help="print one JSON object")
    drv.add_argument("--seed", type=int, default=0, help="random seed of the camera effects")
    drv.add_argument(
        "--registry", type=Path, default=DEFAULT_INDEX, help="models registry the score is appended to"
    )
    add_camera_effects(drv)
    drv.set_defaults(run=drive)

    shw = commands.add_parser("show", help="draw a track and camera views along it")
    shw.add_argument("--track", required=True, help="seed or track file")
    shw.add_argument("--preset", choices=sorted(PRESETS), default="mixed", help="kind of track a seed draws")
    add_floor_argument(shw)
    shw.add_argument("--out", type=Path, required=True, help="PNG to write")
    shw.add_argument("--save", type=Path, help="also write the track file (JSON)")
    shw.set_defaults(run=show)

    cmp = commands.add_parser("compare", help="real camera frames above simulated ones, as a PNG")
    cmp.add_argument("--tub", type=Path, required=True, help="a real tub")
    add_world_arguments(cmp, track_default="0")
    add_camera_effects(cmp)
    cmp.add_argument("--seed", type=int, default=0, help="random seed of the camera effects")
    cmp.add_argument("--frames", type=int, default=5, help="frames per row")
    cmp.add_argument("--out", type=Path, required=True, help="PNG to write")
    cmp.set_defaults(run=compare)

    args = parser.parse_args(argv)
    args.run(args)
    return None
