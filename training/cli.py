"""The flags of scripts/train.py and how they become `TrainOptions` (kept here to be tested)."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace

from car.channels import MODE_USER
from car.frames import COLOR_ORDERS
from training.data import RecordFilter
from training.distribute import CHOICES as DISTRIBUTE_CHOICES
from training.export import QUANTIZATIONS
from training.fit import LR_SCHEDULES, FitConfig
from training.latency import DEFAULT_BUDGET_MS, PI4_SCALE_FACTOR
from training.models import ARCHITECTURES, ModelOptions
from training.split import MAX_EVAL_FRAMES, SPLIT_UNITS, SplitConfig
from training.train import TrainOptions

FRAME_FLAGS = ("crop_top", "crop_bottom", "width", "height", "color")


def index_range(text: str) -> tuple[int, int]:
    """'START:STOP' -> (start, stop), records with start <= _index < stop."""
    try:
        start, stop = (int(part) for part in text.split(":"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected START:STOP, e.g. 0:800, got {text!r}") from err
    if stop <= start:
        raise argparse.ArgumentTypeError(f"empty record range {text!r}")
    return start, stop


def saved_filter(path: str) -> RecordFilter:
    try:
        return RecordFilter.load(path)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Which records to read and how to split them (shared by train.py and export.py)."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--tub", nargs="+", required=True, metavar="DIR", help="tub folders, or folders of tubs"
    )
    data.add_argument("--modes", nargs="+", default=[MODE_USER], help="keep records driven in these modes")
    data.add_argument(
        "--min-throttle", type=float, default=None, help="keep records with throttle above this"
    )
    data.add_argument(
        "--records", type=index_range, default=None, metavar="START:STOP", help="keep _index in [START, STOP)"
    )
    data.add_argument(
        "--filter",
        type=saved_filter,
        metavar="FILE",
        help="a filter saved by `tubcar studio` (replaces --modes and --min-throttle)",
    )
    data.add_argument("--workers", type=int, default=4, help="threads decoding JPEGs")
    split = parser.add_argument_group("train/dev/test split (contiguous blocks, never frame by frame)")
    split.add_argument(
        "--split", nargs=3, type=float, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "DEV", "TEST")
    )
    split.add_argument("--split-by", choices=SPLIT_UNITS, default="block", help="unit assigned to one set")
    split.add_argument("--block-frames", type=int, default=100, help="frames per block (100 = 5 s at 20 Hz)")
    split.add_argument(
        "--split-gap", type=int, default=5, help="frames dropped at both ends of dev/test blocks"
    )
    split.add_argument(
        "--max-eval-frames", type=int, default=MAX_EVAL_FRAMES, help="cap on dev and on test size"
    )
    split.add_argument(
        "--seed", type=int, default=0, help="seeds the split, weights, shuffling, augmentation"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every flag of scripts/train.py except the augmentation ones (augment.add_arguments)."""
    add_data_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder for the bundle, report and plots")
    parser.add_argument("--model", choices=ARCHITECTURES, default="fast", help="architecture (default fast)")
    frame = parser.add_argument_group("model input (defaults: the architecture's own)")
    frame.add_argument("--crop-top", type=int, help="camera rows cut from the top")
    frame.add_argument("--crop-bottom", type=int, help="camera rows cut from the bottom")
    frame.add_argument("--width", type=int, help="model input width after resize")
    frame.add_argument("--height", type=int, help="model input height after resize")
    frame.add_argument("--color", choices=COLOR_ORDERS, help="channel order fed to the model")
    model = parser.add_argument_group("capacity and regularisation")
    model.add_argument(
        "--width-multiplier",
        type=float,
        default=1.0,
        help="scales every layer's filters/units (1.0: the architecture as published)",
    )
    model.add_argument("--dropout", type=float, help="dropout rate (default: the architecture's)")
    model.add_argument("--l2", type=float, default=0.0, help="L2 weight penalty on convs and dense layers")
    model.add_argument(
        "--batch-norm", action=argparse.BooleanOptionalAction, default=None, help="batch normalisation"
    )
    fit = parser.add_argument_group("optimisation (Adam)")
    defaults = FitConfig()
    fit.add_argument("--epochs", type=int, default=defaults.epochs)
    fit.add_argument("--batch-size", type=int, default=defaults.batch_size)
    fit.add_argument("--lr", type=float, default=defaults.lr, help="initial learning rate")
    fit.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule)
    fit.add_argument(
        "--lr-decay", type=float, default=defaults.lr_decay, help="exponential: factor per epoch"
    )
    fit.add_argument(
        "--lr-final-fraction", type=float, default=defaults.lr_final_fraction, help="cosine: final lr / lr"
    )
    fit.add_argument("--patience", type=int, default=defaults.patience, help="early stopping on dev loss")
    fit.add_argument(
        "--min-delta", type=float, default=defaults.min_delta, help="smallest dev-loss improvement"
    )
    fit.add_argument(
        "--throttle-weight", type=float, default=defaults.throttle_weight, help="throttle loss weight"
    )
    fit.add_argument(
        "--augment-workers",
        type=int,
        default=TrainOptions.augment_workers,
        help="processes augmenting training batches (default: one per CPU core; 0: in the training process)",
    )
    fit.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras progress output")
    fit.add_argument(
        "--distribute",
        choices=DISTRIBUTE_CHOICES,
        default="none",
        help="mirrored: every local GPU; multiworker: several machines, each with its TF_CONFIG",
    )
    export = parser.add_argument_group("export")
    export.add_argument(
        "--quantize", choices=("auto", *QUANTIZATIONS), default="auto", help="auto: int8 if it passes parity"
    )
    export.add_argument(
        "--latency-budget-ms",
        type=float,
        default=DEFAULT_BUDGET_MS,
        help="model latency allowed on a Pi 4 (20 Hz loop)",
    )
    export.add_argument(
        "--pi-scale-factor",
        type=float,
        default=PI4_SCALE_FACTOR,
        help="assumed Pi 4 / this machine latency ratio",
    )


def split_config(args: argparse.Namespace) -> SplitConfig:
    return SplitConfig(
        fractions=tuple(args.split),
        unit=args.split_by,
        block_frames=args.block_frames,
        gap=args.split_gap,
        max_eval_frames=args.max_eval_frames,
        seed=args.seed,
    )


def record_filter(args: argparse.Namespace) -> RecordFilter:
    if args.filter is not None:
        return replace(args.filter, index_range=args.records or args.filter.index_range)
    return RecordFilter(modes=tuple(args.modes), min_throttle=args.min_throttle, index_range=args.records)


def options_from_args(args: argparse.Namespace, augment_config=None) -> TrainOptions:
    """Parsed flags -> TrainOptions; `augment_config` comes from augment.config_from_args."""
    fit_fields = {f.name for f in fields(FitConfig)}
    return TrainOptions(
        architecture=args.model,
        model=ModelOptions(
            dropout=args.dropout, l2=args.l2, batch_norm=args.batch_norm, width=args.width_multiplier
        ),
        fit=FitConfig(**{name: getattr(args, name) for name in fit_fields}),
        split=split_config(args),
        rules=record_filter(args),
        frame_overrides={
            name: getattr(args, name) for name in FRAME_FLAGS if getattr(args, name) is not None
        },
        quantization=args.quantize,
        budget_ms=args.latency_budget_ms,
        pi_scale_factor=args.pi_scale_factor,
        augment=augment_config,
        workers=args.workers,
        augment_workers=args.augment_workers,
        distribute=args.distribute,
    )
