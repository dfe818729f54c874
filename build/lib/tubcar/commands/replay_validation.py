"""Does closed-loop replay of a recorded lap score models as the simulator itself does?

Records a held-out expert lap on a simulator track, trains models of clearly different
quality (well-trained, under-trained, biased, untrained) and takes three reference pilots
(a yellow-line follower, the same with a steering trim, one steering away), then scores
each one driving the simulator (the ground truth) and replaying the recorded lap
(`tubcar replay --closed-loop`). Prints the table, the rank agreement and the warp
fidelity; writes them to --out as validation.json and validation.md (see
experiments/replay_validation.py).

    tubcar replay-validation --out runs/replay_validation
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.replay_validation import ValidationPlan, fidelity_table, run_validation, table
from training.flags import add_flags, from_flags


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar replay-validation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/replay_validation"),
        help="folder for tubs, models and results (default: %(default)s)",
    )
    add_flags(parser, ValidationPlan)
    args = parser.parse_args(argv)
    results = run_validation(from_flags(ValidationPlan, args), args.out)
    print("\n" + table(results["rows"]))
    print("\nagreement: " + ", ".join(f"{k} {v:.3f}" for k, v in results["agreement"].items()))
    print("\nwarp fidelity (well-trained model):\n" + fidelity_table(results["warp_fidelity"]))
    print(f"wrote {args.out / 'validation.md'}")
    return 0
