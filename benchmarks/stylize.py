"""Style-transfer apply speed: frames/s of `stylize.py apply` on the real 160x120 Donkey tub.

Measures the whole apply (JPEG decode, batched transform network as TFLite, JPEG encode,
tub write) and the network alone. Speed does not depend on the weights, so without
--style a random-weight network of the default size stands in for a trained one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.real_tub import extract_donkey_tub


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", help="style folder from `stylize.py train` (default: random weights)")
    parser.add_argument("--tub", help="source tub (default: the shared 1,000-frame Donkey tub)")
    parser.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from augment.style import NetworkSpec, Stylizer, build_transform_net, read_card, save_style, stylize_tub
    from car.tub import Tub

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(args.tub) if args.tub else extract_donkey_tub(Path(scratch))
        frames = np.stack(
            [r["cam/image_array"] for _, r in zip(range(256), Tub(source).records(load_images=True))]
        )
        style = args.style or save_style(
            Path(scratch) / "random-weights",
            build_transform_net(NetworkSpec()),
            NetworkSpec(),
            frames[0],
            {"name": "random-weights"},
            frame_size=frames.shape[1:3],
        )
        card = read_card(style)
        stylizer = Stylizer(style, args.batch_size)
        stylizer(frames[: args.batch_size])  # load the interpreter (and convert, for a new frame size)
        started = time.perf_counter()
        stylizer(frames)
        network_fps = len(frames) / (time.perf_counter() - started)
        report = stylize_tub(stylizer, card, source, Path(scratch) / "styled", progress=False)
    height, width = frames.shape[1:3]
    return {
        "frames_per_s": round(report.frames_per_s, 1),
        "network_frames_per_s": round(network_fps, 1),
        "frames": report.frames,
        "frame_size": f"{width}x{height}",
        "batch_size": args.batch_size,
        "style": card.get("name"),
        "runtime": "LiteRT float32, XNNPACK, 2 threads",
        "network_parameters": int(build_transform_net(NetworkSpec.from_dict(card["network"])).count_params()),
    }
