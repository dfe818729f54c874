"""Train a steering model on tubs and export a model bundle the car can drive.

    tubcar train --tub data/tubs --out models/fast            # fast model, int8 if parity holds
    tubcar train --tub data/a data/b --model linear --out models/linear --augment none
    tubcar train --tub data/tubs --out models/fast --distribute mirrored  # every local GPU

Writes pilot.tflite + model.json (the bundle), model.keras, report.md, metrics.json,
learning_curves.png, test_predictions.png, checkpoints/ and TensorBoard logs/ into --out,
and appends the run to the models registry (--registry; list it with tubcar models ls).
With --distribute multiworker only worker 0 (the chief) exports and registers the run.
"""

from pathlib import Path

import augment
from training.cli import add_arguments, options_from_args, sources_from_args
from training.distribute import is_chief
from training.registry import DEFAULT_INDEX, append_run
from training.train import stages_text, train
from tubcar.errors import UserError, command_parser


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar train", __doc__)
    add_arguments(parser)
    augment.add_arguments(parser)
    parser.add_argument(
        "--registry",
        type=Path,
        default=DEFAULT_INDEX,
        metavar="PATH",
        help=f"models registry the run is appended to (default {DEFAULT_INDEX})",
    )
    args = parser.parse_args(argv)
    options = options_from_args(args, augment.config_from_args(args))
    try:
        result = train(sources_from_args(args), args.out, options)
    except ValueError as err:  # bad data, a NaN loss, a failed export: said in one line
        hint = "see `tubcar train --help` (--split, --lr, --quantize) and `tubcar tub check`"
        raise UserError(f"{err}, {' '.join(map(str, args.tub))}, {hint}") from None
    if not is_chief():
        return 0  # train() said where this worker's copy went; worker 0 exports and registers the run
    card = result.card
    errors = result.metrics["errors"]
    held_out = errors.get("test", errors["dev"])["angle"]["mse"]
    print(
        f"\nbundle: {Path(args.out) / card.model_file} + model.json "
        f"({card.architecture}, {card.quantization}); test steering MSE {held_out:.4f}; "
        f"latency {card.latency.median_ms:.3f} ms here, ~{card.latency.pi_estimate_ms:.1f} ms on a Pi 4"
    )
    print(f"took {sum(result.stage_seconds.values()):.0f} s: {stages_text(result.stage_seconds)}")
    entry = append_run(result.out, args, index=args.registry, card=card)
    print(
        f"registry: run {entry['run_id']} appended to {args.registry} "
        f"(tubcar models ls --index {args.registry})"
    )
    return 0
