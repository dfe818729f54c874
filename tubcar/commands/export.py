"""Export a trained Keras model as a model bundle, or re-time a bundle where it runs.

    tubcar export convert --keras runs/fast/model.keras --tub data/tubs --out bundles/fast --quantize int8
    tubcar export latency bundles/fast                     # here (Pi estimate = x --pi-scale-factor)
    tubcar export latency bundles/fast --pi-scale-factor 1 # on the Pi itself: a measurement
    tubcar export layers --keras runs/fast/model.keras --tub data/tubs  # int8 error of each layer

`convert` takes the input preparation (FrameSpec) from the model.json that training wrote
beside the .keras file; for a Keras model from elsewhere give --model and --crop-top etc.
`latency` needs no TensorFlow, only ai-edge-litert, so it runs on the Pi. `layers` prints
how far each quantised tensor strays from the float model on dev frames (TFLite's
QuantizationDebugger), calibrated as `convert` calibrates (`--calibration spread`) or on
random training frames (`random`), to see which layer resists int8 and why.
"""

import argparse
from dataclasses import replace
from pathlib import Path

from car.frames import COLOR_ORDERS
from training.latency import DEFAULT_BUDGET_MS, DEFAULT_RUNS, PI4_SCALE_FACTOR
from tubcar.errors import UserError, command_parser


def convert(args: argparse.Namespace) -> None:
    from car.bundle import BundleError, load_card
    from training.cli import FRAME_FLAGS, record_filter, split_config
    from training.export import export_keras_file
    from training.models import default_frame_spec

    if not args.keras.is_file():
        raise UserError(f"no such Keras model, {args.keras}, give the model.keras that `tubcar train` wrote")
    try:
        card = load_card(args.keras.parent)
        spec, architecture = card.input, args.model or card.architecture
    except BundleError:
        if not args.model:
            raise UserError(
                f"no model.json beside the Keras model, {args.keras.parent}, give --model (and input flags)"
            ) from None
        spec, architecture = default_frame_spec(args.model, args.source_width, args.source_height), args.model
    overrides = {name: getattr(args, name) for name in FRAME_FLAGS if getattr(args, name) is not None}
    card = export_keras_file(
        args.keras,
        args.tub,
        args.out,
        spec=replace(spec, **overrides),
        architecture=architecture,
        rules=record_filter(args),
        split_config=split_config(args),
        quantization=args.quantize,
        budget_ms=args.latency_budget_ms,
        pi_scale_factor=args.pi_scale_factor,
    )
    print(f"wrote {args.out}/{card.model_file} + model.json ({card.architecture}, {card.quantization})")


def latency(args: argparse.Namespace) -> None:
    from training.export import remeasure_latency

    remeasure_latency(args.bundle, args.latency_budget_ms, args.pi_scale_factor, args.runs)
    print(f"{args.bundle}/model.json updated")


def layers(args: argparse.Namespace) -> None:
    import keras
    import numpy as np

    from car.bundle import load_card
    from training.cli import record_filter, split_config
    from training.export import PARITY_FRAMES, training_and_dev
    from training.pipeline import prepare_all, representative_frames
    from training.quant_debug import format_errors, layer_errors

    spec = load_card(args.keras.parent).input
    model = keras.models.load_model(args.keras, compile=False)
    train, dev, _ = training_and_dev(args.tub, record_filter(args), split_config(args))
    if args.calibration == "spread":
        representative = representative_frames(train, spec, args.frames)
    else:
        picks = np.sort(np.random.default_rng(0).permutation(len(train))[: args.frames])
        representative = prepare_all(train.images[picks], spec)
    inputs = prepare_all(dev.images[:PARITY_FRAMES], spec)
    rows = layer_errors(model, spec, representative, inputs)
    print(f"{len(representative)} calibration frames ({args.calibration}), {len(inputs)} dev frames")
    print(format_errors(rows))


def main(argv: list[str] | None = None) -> int | None:
    from training.cli import add_data_arguments
    from training.export import QUANTIZATIONS
    from training.models import ARCHITECTURES
    from training.pipeline import REPRESENTATIVE_FRAMES

    parser = command_parser("tubcar export", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="Keras model -> pilot.tflite + model.json")
    conv.add_argument("--keras", type=Path, required=True, help="a .keras file")
    conv.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    conv.add_argument("--quantize", choices=("auto", *QUANTIZATIONS), default="auto")
    conv.add_argument(
        "--model", choices=ARCHITECTURES, help="architecture name (when there is no model.json)"
    )
    conv.add_argument("--source-width", type=int, default=160)
    conv.add_argument("--source-height", type=int, default=120)
    for flag in ("--crop-top", "--crop-bottom", "--width", "--height"):
        conv.add_argument(flag, type=int)
    conv.add_argument("--color", choices=COLOR_ORDERS)
    add_data_arguments(conv)
    lat = sub.add_parser("latency", help="time a bundle on this machine and update its model.json")
    lat.add_argument("bundle", type=Path)
    lat.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed calls")
    for sub_parser in (conv, lat):
        sub_parser.add_argument(
            "--latency-budget-ms", type=float, default=DEFAULT_BUDGET_MS, help="model p99 allowed on a Pi 4"
        )
        sub_parser.add_argument(
            "--pi-scale-factor",
            type=float,
            default=PI4_SCALE_FACTOR,
            help="assumed Pi 4 / this machine latency ratio; 1 on the Pi itself",
        )
    lay = sub.add_parser("layers", help="int8 error of each quantised layer on dev frames")
    lay.add_argument(
        "--keras", type=Path, required=True, help="a .keras file with training's model.json beside it"
    )
    lay.add_argument("--calibration", choices=("spread", "random"), default="spread")
    lay.add_argument("--frames", type=int, default=REPRESENTATIVE_FRAMES, help="calibration frames")
    add_data_arguments(lay)
    args = parser.parse_args(argv)
    {"convert": convert, "latency": latency, "layers": layers}[args.command](args)
    return 0
