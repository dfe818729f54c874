"""A tub as a movie: the driver's steering and throttle on a gauge, and a model's beside them.

    tubcar movie --tub data/tub_1                                   # what the driver did
    tubcar movie --tub data/tub_1 --model models/fast --out m.mp4   # and what the model says

Green: the recorded command; red: the model's (the car's own TFLite pilot, as `tubcar
replay` runs it). Plays at the rate the tub was recorded. `.mp4` plays in desktop players,
`.webm` in browsers.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from car.tub import Tub
from car.tub.ranges import parse_index_range
from evaluation.movie import make_movie
from tubcar.errors import command_parser


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar movie", __doc__)
    parser.add_argument("--tub", type=Path, required=True, help="tub folder")
    parser.add_argument("--model", type=Path, help="model bundle whose predictions are drawn too")
    parser.add_argument("--out", type=Path, help="video to write (default: runs/movie/<tub>[-<model>].mp4)")
    parser.add_argument(
        "--records", type=parse_index_range, metavar="START:STOP", help="only these records (STOP excluded)"
    )
    parser.add_argument("--scale", type=int, default=3, help="frame enlargement")
    args = parser.parse_args(argv)

    tub = Tub(args.tub)
    pilot = None
    if args.model is not None:
        from car.pilot import Pilot

        pilot = Pilot.load(args.model)
    name = args.tub.resolve().name + (f"-{args.model.resolve().name}" if args.model else "")
    out = args.out or Path("runs") / "movie" / f"{name}.mp4"
    movie = make_movie(
        tub,
        out,
        pilot,
        keep=None if args.records is None else lambda record: record["_index"] in args.records,
        scale=args.scale,
        progress=lambda records: tqdm(records, desc="movie", unit="frame"),
    )
    for problem in movie.skipped:
        print(f"skipped {problem}")
    print(f"wrote {movie.path}: {movie.frames} frames at {movie.fps:.1f} frames/s")
    return 0
