"""Does closed-loop replay of a recorded lap score models as the simulator itself does?

Records a held-out expert lap on a simulator track, trains models of clearly different
quality (well-trained, under-trained, biased, untrained) and takes three reference pilots
(a yellow-line follower, the same with a steering trim, one steering away), then scores
each one driving the simulator (the ground truth), replaying the recorded lap
(`tubcar replay --closed-loop`) and replaying it as if it were a real tub (pose ignored,
path from the pictures). Prints the table, the rank agreement, the visual odometry's drift
and the warp fidelity; writes them to --out as validation.json and validation.md (see
experiments/replay_validation.py).

    tubcar replay-validation --out runs/replay_validation [--json]

--json prints one JSON object instead: pilots (how many were compared), as_real_agree
(how many got the simulator's verdict as if real), as_real_spearman_autonomy,
as_real_spearman_mean_offset, vo_position_error_m_per_m, vo_heading_error_deg_per_m, and
the replay's own agreement.
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.replay_validation import ValidationPlan, fidelity_table, run_validation, table
from training.flags import add_flags, from_flags
from tubcar.errors import command_parser


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar replay-validation", __doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/replay_validation"),
        help="folder for tubs, models and results (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    add_flags(parser, ValidationPlan)
    args = parser.parse_args(argv)
    log = (lambda *_: None) if args.json else print
    results = run_validation(from_flags(ValidationPlan, args), args.out, log=log)
    if args.json:
        print(json.dumps({**results["as_real"], "replay": results["agreement"]}, sort_keys=True))
        return 0
    print("\n" + table(results["rows"]))
    print("\nagreement: " + ", ".join(f"{k} {v:.3f}" for k, v in results["agreement"].items()))
    print("as if real: " + ", ".join(f"{k} {v:g}" for k, v in results["as_real"].items()))
    print("\nwarp fidelity (well-trained model):\n" + fidelity_table(results["warp_fidelity"]))
    print(f"wrote {args.out / 'validation.md'}")
    return 0
