"""Neural style transfer for tubs: learn a style, then re-render tubs in it.

    tubcar stylize train --style data/styles/mosaic.png --tub data/ --out styles/mosaic
    tubcar stylize apply --style styles/mosaic --tub data/track1 --out data/track1-mosaic

`train` fits a small feed-forward network (Johnson et al. 2016) to the style image with
a VGG16 perceptual loss, using frames from your tubs as content. `apply` writes a new
tub with every frame stylised, the same labels, and its origin in the tub metadata.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def load_content_frames(tub_paths: list[str], max_frames: int, seed: int, scale: float = 1.0):
    """Up to max_frames random camera frames from the tubs, scaled: uint8 (N, H, W, 3), H, W % 4 == 0,
    and the tubs' own frame size (H, W)."""
    import cv2
    import numpy as np

    from car.channels import CAMERA_IMAGE
    from car.tub import open_tubs

    tubs = open_tubs(tub_paths)
    records = [(tub, record) for tub in tubs for record in tub.records()]
    if not records:
        raise SystemExit(f"no usable records in {', '.join(tub_paths)}")
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(records), min(max_frames, len(records)), replace=False))
    loaded = (tub.load_image_or_skip(record, CAMERA_IMAGE) for tub, record in (records[i] for i in picks))
    frames = [frame for frame in loaded if frame is not None]
    if not frames:
        raise SystemExit(f"no decodable frames in {', '.join(map(str, tub_paths))}")
    height, width = frames[0].shape[:2]
    size = (max(4, round(width * scale / 4) * 4), max(4, round(height * scale / 4) * 4))
    scaled = [
        cv2.resize(f, size, interpolation=cv2.INTER_AREA) if f.shape[1::-1] != size else f for f in frames
    ]
    return np.stack(scaled), (height, width)


def train(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from augment.style import (
        LossWeights,
        NetworkSpec,
        StyleTraining,
        VggWeightsMissing,
        read_image,
        save_style,
        train_style_network,
    )
    from augment.style.loss import resolve_vgg_weights

    try:
        resolve_vgg_weights(args.vgg_weights)  # fail before loading any data
    except VggWeightsMissing as err:
        raise SystemExit(f"error: {err}") from None
    style_image = read_image(args.style)
    frames, frame_size = load_content_frames(args.tub, args.max_frames, args.seed, args.content_scale)
    settings = StyleTraining(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        style_size=args.style_size,
        seed=args.seed,
        network=NetworkSpec(tuple(args.filters), args.residual_blocks, args.end_kernel),
        loss=LossWeights(args.content_weight, args.style_weight, args.tv_weight),
    )
    print(
        f"style {args.style}: {style_image.shape[1]}x{style_image.shape[0]}; content: {len(frames)} frames "
        f"{frames.shape[2]}x{frames.shape[1]} from {', '.join(args.tub)}"
    )
    bar = tqdm(total=settings.steps, desc="train style", unit="step")

    def on_step(_: int, losses: dict[str, float]) -> None:
        bar.set_postfix(
            loss=f"{losses['total']:.3f}", content=f"{losses['content']:.3f}", style=f"{losses['style']:.3f}"
        )
        bar.update()

    network, history = train_style_network(style_image, frames, settings, args.vgg_weights, on_step)
    bar.close()
    name = args.name or Path(args.style).stem
    info = {
        "name": name,
        "style_file": str(args.style),
        "vgg_weights": str(args.vgg_weights),
        "content_tubs": [str(p) for p in args.tub],
        "training": settings,
        "history": history[:: max(1, len(history) // 200)],
        "final_loss": history[-1],
    }
    folder = save_style(args.out, network, settings.network, style_image, info, frame_size)
    first, last = history[0]["total"], history[-1]["total"]
    print(f"wrote style {name!r} to {folder} (loss {first:.3f} -> {last:.3f} over {len(history)} steps)")


def apply(args: argparse.Namespace) -> None:
    from augment.style import StyleError, Stylizer, read_card, stylize_tub
    from car.tub import TubError

    try:
        card = read_card(args.style)
        report = stylize_tub(Stylizer(args.style, args.batch_size), card, args.tub, args.out)
    except (StyleError, TubError) as err:
        raise SystemExit(f"error: {err}") from None
    print(
        f"wrote {report.frames} stylised frames ({card.get('name')}) to {report.target} "
        f"at {report.frames_per_s:.0f} frames/s; {report.skipped} bad source records skipped"
    )


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar stylize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("train", help="learn a style network from one style image")
    fit.add_argument("--style", required=True, help="style image (PNG/JPEG)")
    fit.add_argument("--out", required=True, help="style folder to write")
    fit.add_argument(
        "--tub", nargs="+", default=["data"], help="tubs (or folders of tubs) giving content frames"
    )
    fit.add_argument("--name", help="style name (default: the image's file name)")
    fit.add_argument(
        "--vgg-weights",
        default="imagenet",
        help="'imagenet' (Keras cache ~/.keras/models), a VGG16 no-top .h5 file, or 'random'",
    )
    fit.add_argument("--steps", type=int, default=2000)
    fit.add_argument("--batch-size", type=int, default=4)
    fit.add_argument("--learning-rate", type=float, default=1e-3)
    fit.add_argument("--style-size", type=int, default=256, help="style image's longer side as VGG sees it")
    fit.add_argument("--max-frames", type=int, default=2000, help="content frames to sample from the tubs")
    fit.add_argument(
        "--content-scale",
        type=float,
        default=1.0,
        help="train on frames scaled by this (0.5: 4x faster steps; the net still applies to full frames)",
    )
    fit.add_argument("--filters", type=int, nargs=3, default=[8, 16, 32], metavar=("F1", "F2", "F3"))
    fit.add_argument("--residual-blocks", type=int, default=3)
    fit.add_argument("--end-kernel", type=int, default=3, help="kernel of the first and last convolutions")
    fit.add_argument("--content-weight", type=float, default=1.0)
    fit.add_argument("--style-weight", type=float, default=1.0)
    fit.add_argument("--tv-weight", type=float, default=1e-4)
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(func=train)

    render = sub.add_parser("apply", help="write a stylised copy of a tub")
    render.add_argument("--style", required=True, help="style folder made by `train`")
    render.add_argument("--tub", required=True, help="source tub")
    render.add_argument("--out", required=True, help="new tub to write")
    render.add_argument("--batch-size", type=int, default=32, help="frames per network call")
    render.set_defaults(func=apply)

    args = parser.parse_args(argv)
    args.func(args)
