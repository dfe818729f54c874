"""The flags of `tubcar train` and how they become `TrainOptions` (kept here to be tested).

The flags of the config dataclasses (RecordFilter, SplitConfig, ModelOptions, FitConfig,
TrainOptions) are generated from their fields (training/flags.py): the defaults `--help`
shows are the dataclasses' own. Only the data folders, the output folder and the model
input overrides (FrameSpec fields, whose defaults are the architecture's) are typed here.

`--tub` may be given several times, each followed by its `--tub-weight` (default 1): the
recipe's weighted mix, e.g. `--tub real/ --tub-weight 1 --tub sim/ --tub-weight 0.3`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from car.frames import COLOR_ORDERS
from training.data import RecordFilter
from training.fit import FitConfig
from training.flags import add_flags, from_flags
from training.models import ModelOptions
from training.split import SplitConfig
from training.train import Sources, TrainOptions

FRAME_FLAGS = ("crop_top", "crop_bottom", "width", "height", "color")


def saved_filter(path: str) -> RecordFilter:
    """`--filter FILE`: a filter saved by `tubcar studio`; argparse reports a bad file."""
    try:
        return RecordFilter.load(path)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class _TubGroup(argparse.Action):
    """`--tub DIR [DIR ...]`, repeatable: `args.tub` collects every path, and the group each
    path came in is remembered for `--tub-weight`."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        namespace.tub = [*(getattr(namespace, "tub", None) or []), *values]
        namespace.tub_groups = [*(getattr(namespace, "tub_groups", None) or []), [len(values), None]]


class _TubWeight(argparse.Action):
    """`--tub-weight W`: the weight of the `--tub` just before it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        groups: list[list] = getattr(namespace, "tub_groups", None) or []
        if not groups:
            parser.error("--tub-weight weighs the --tub given just before it: give --tub first")
        if groups[-1][1] is not None:
            parser.error("one --tub-weight per --tub")
        if not values > 0:
            parser.error(f"--tub-weight must be > 0, got {values:g}")
        groups[-1][1] = values


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Which records to read and how to split them (shared by train, search and export)."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--tub",
        nargs="+",
        required=True,
        action=_TubGroup,
        metavar="DIR",
        help="tub folders, or folders of tubs (repeatable)",
    )
    add_flags(data, RecordFilter)
    add_flags(data, TrainOptions, only=("workers",))
    data.add_argument(
        "--filter",
        type=saved_filter,
        metavar="FILE",
        help="a filter saved by `tubcar studio` (replaces --modes and --min-throttle)",
    )
    split = parser.add_argument_group("train/dev/test split (contiguous blocks, never frame by frame)")
    add_flags(split, SplitConfig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every flag of `tubcar train` except the augmentation ones (augment.add_arguments)."""
    add_data_arguments(parser)
    sources = parser.add_argument_group(
        "data from two distributions (the recipe's mismatched data, transfer learning)"
    )
    sources.add_argument(
        "--tub-weight",
        type=float,
        action=_TubWeight,
        metavar="W",
        help="how much each frame of the --tub just before counts in training (default 1)",
    )
    sources.add_argument(
        "--dev-tub",
        nargs="+",
        default=[],
        metavar="DIR",
        help="dev frames from these tubs instead of the training tubs (e.g. real tubs beside simulator "
        "training tubs); without --test-tub they are split half dev, half test",
    )
    sources.add_argument(
        "--test-tub", nargs="+", default=[], metavar="DIR", help="test frames from these tubs (see --dev-tub)"
    )
    add_flags(sources, TrainOptions, only=("init_from", "freeze_conv"))
    parser.add_argument("--out", required=True, help="output folder for the bundle, report and plots")
    add_flags(parser, TrainOptions, only=("architecture",))
    frame = parser.add_argument_group("model input (defaults: the architecture's own)")
    frame.add_argument("--crop-top", type=int, help="camera rows cut from the top")
    frame.add_argument("--crop-bottom", type=int, help="camera rows cut from the bottom")
    frame.add_argument("--width", type=int, help="model input width after resize")
    frame.add_argument("--height", type=int, help="model input height after resize")
    frame.add_argument("--color", choices=COLOR_ORDERS, help="channel order fed to the model")
    add_flags(parser.add_argument_group("capacity and regularisation"), ModelOptions)
    fit = parser.add_argument_group("optimisation (Adam)")
    add_flags(fit, FitConfig)
    add_flags(fit, TrainOptions, only=("augment_workers", "distribute"))
    export = parser.add_argument_group("export")
    add_flags(export, TrainOptions, only=("quantization", "budget_ms", "pi_scale_factor"))


def split_config(args: argparse.Namespace) -> SplitConfig:
    return from_flags(SplitConfig, args)


def record_filter(args: argparse.Namespace) -> RecordFilter:
    if args.filter is not None:
        return replace(args.filter, index_range=args.records or args.filter.index_range)
    return from_flags(RecordFilter, args)


def tub_weights(args: argparse.Namespace) -> list[float] | None:
    """One weight per path of `args.tub` (its --tub's --tub-weight, or 1); None when none was given."""
    groups = getattr(args, "tub_groups", None) or []
    if all(weight is None for _, weight in groups):
        return None
    return [1.0 if weight is None else weight for count, weight in groups for _ in range(count)]


def sources_from_args(args: argparse.Namespace) -> Sources:
    """The training tubs with their weights, and the dev/test tubs."""
    return Sources(
        tubs=args.tub, tub_weights=tub_weights(args), dev_tubs=args.dev_tub, test_tubs=args.test_tub
    )


def options_from_args(args: argparse.Namespace, augment_config=None) -> TrainOptions:
    """Parsed flags -> TrainOptions; `augment_config` comes from augment.config_from_args.

    `--seed` (SplitConfig's) seeds the weights, shuffling and augmentation too.
    """
    return from_flags(
        TrainOptions,
        args,
        model=from_flags(ModelOptions, args),
        fit=from_flags(FitConfig, args, seed=args.seed),
        split=split_config(args),
        rules=record_filter(args),
        frame_overrides={
            name: getattr(args, name) for name in FRAME_FLAGS if getattr(args, name) is not None
        },
        augment=augment_config,
    )
