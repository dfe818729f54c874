"""Export a trained Keras model as a model bundle, or re-time a bundle where it runs.

    tubcar export convert --keras runs/fast/model.keras --tub data/tubs --out bundles/fast --quantize int8
    tubcar export latency bundles/fast                     # here (Pi estimate = x --pi-scale-factor)
    tubcar export latency bundles/fast --pi-scale-factor 1 # on the Pi itself: a measurement

`convert` takes the input preparation (FrameSpec) from the model.json that training wrote
beside the .keras file; for a Keras model from elsewhere give --model and --crop-top etc.
`latency` needs no TensorFlow, only ai-edge-litert, so it runs on the Pi.
"""

import argparse
from dataclasses import replace
from pathlib import Path

from car.frames import COLOR_ORDERS
from training.latency import DEFAULT_BUDGET_MS, PI4_SCALE_FACTOR, budget_warning


def convert(args: argparse.Namespace) -> None:
    from car.bundle import BundleError, load_card
    from training.cli import FRAME_FLAGS, record_filter, split_config
    from training.export import export_keras_file
    from training.models import default_frame_spec

    try:
        card = load_card(args.keras.parent)
        spec, architecture = card.input, args.model or card.architecture
    except BundleError:
        if not args.model:
            raise SystemExit(
                f"{args.keras.parent}: no model.json beside the Keras model; give --model (and input flags)"
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

    card = remeasure_latency(args.bundle, args.latency_budget_ms, args.pi_scale_factor, args.runs)
    spec = card.latency
    print(
        f"{args.bundle}: {spec.median_ms:.3f} ms median, {spec.p99_ms:.3f} ms p99 "
        f"on {spec.machine} (1 thread); "
        f"Pi 4 {'measured' if args.pi_scale_factor == 1 else 'estimate'} {spec.pi_estimate_ms:.2f} ms, "
        f"budget {spec.budget_ms:g} ms; model.json updated"
    )
    warning = budget_warning(spec.model_dump())
    if warning:
        print(warning)


def main(argv: list[str] | None = None) -> int | None:
    from training.cli import add_data_arguments
    from training.export import QUANTIZATIONS
    from training.models import ARCHITECTURES

    parser = argparse.ArgumentParser(
        prog="tubcar export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    lat.add_argument("--runs", type=int, default=300)
    for sub_parser in (conv, lat):
        sub_parser.add_argument("--latency-budget-ms", type=float, default=DEFAULT_BUDGET_MS)
        sub_parser.add_argument("--pi-scale-factor", type=float, default=PI4_SCALE_FACTOR)
    args = parser.parse_args(argv)
    {"convert": convert, "latency": latency}[args.command](args)
