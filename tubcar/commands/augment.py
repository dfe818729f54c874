"""See what training sees: a grid of augmented frames from a tub.

    tubcar augment preview --tub T --out grid.png [--model fast] [--augment ... --aug-* ...]


Draws frames from a tub beside augmented copies, with their steering/throttle labels
and the transforms that fired, as the model's input (`--model`'s crop and size, the
way training prepares and augments them; `--model camera` shows whole camera frames).
Takes the same --augment/--aug-* flags as tubcar train.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

import augment
from augment.preview import preview_grid
from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE
from car.frames import prepare_frame
from car.tub import TubError, open_tubs
from training.models import ARCHITECTURES, default_frame_spec


def preview(args: argparse.Namespace) -> None:
    try:
        tubs = open_tubs(args.tub)
        records = [(tub, record) for tub in tubs for record in tub.records()]
    except TubError as err:
        raise SystemExit(f"error: {err}") from None
    if not records:
        raise SystemExit(f"error: no usable records in {', '.join(args.tub)}")
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(records), min(args.rows, len(records)), replace=False))
    samples = []
    for tub, record in (records[i] for i in picks):
        frame = tub.load_image_or_skip(record, CAMERA_IMAGE)
        if frame is not None:
            samples.append((frame, float(record[USER_ANGLE]), float(record[USER_THROTTLE])))
    if not samples:
        raise SystemExit(f"error: none of the picked frames of {', '.join(args.tub)} decodes")
    config = augment.config_from_args(args)
    prepare = None
    if args.model != "camera":
        frame = samples[0][0]
        spec = default_frame_spec(args.model, frame.shape[1], frame.shape[0])
        prepare = partial(prepare_frame, spec=spec)
    out = preview_grid(samples, augment.build_augmenter(config, args.seed), args.variants, args.out, prepare)
    print(f"wrote {out}: {len(samples)} frames x {args.variants} augmented copies ({config.preset} preset)")


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar augment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("preview", help="PNG grid of original and augmented frames with labels")
    grid.add_argument("--tub", nargs="+", required=True, help="tub(s) or folders of tubs")
    grid.add_argument("--out", default="augment-preview.png", help="PNG to write")
    grid.add_argument("--rows", type=int, default=4, help="frames to show")
    grid.add_argument("--variants", type=int, default=5, help="augmented copies per frame")
    grid.add_argument("--seed", type=int, default=0)
    grid.add_argument(
        "--model",
        choices=(*ARCHITECTURES, "camera"),
        default="fast",
        help="show the input of this architecture (default fast), or whole camera frames",
    )
    augment.add_arguments(grid)
    grid.set_defaults(func=preview)
    args = parser.parse_args(argv)
    args.func(args)
