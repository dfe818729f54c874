"""Measure the README's acceptance figures.

    tubcar acceptance sim --out runs/acceptance          # record, train 3 models, drive, bench
    tubcar acceptance real --tub ../shared/data/tub --out runs/real

`sim`: expert laps on --train-seeds -> train fast, linear, pilotnet (timed) -> int8 bundles
-> closed-loop drives on --test-seeds (never seen in training), scored as `tubcar sim
drive` scores them -> latency ratio, measured as `tubcar bench infer` measures it.
`real`: train on records 0-799 of a real tub, score steering MSE on records 800-999
against predicting the mean (goal: at most half). See experiments/acceptance.py.
"""

import argparse
import json
from pathlib import Path

import augment
from experiments.acceptance import SimPlan, real_acceptance, sim_acceptance
from training.fit import FitConfig
from training.flags import add_flags, from_flags
from training.models import ARCHITECTURES
from training.train import TrainOptions
from tubcar.errors import command_parser


def options(args: argparse.Namespace) -> TrainOptions:
    fit = FitConfig(epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=2)
    return TrainOptions(architecture=args.model[0], fit=fit, augment=augment.config_from_args(args))


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar acceptance", __doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    sim = sub.add_parser("sim", help="sim: train on a few seeds, drive unseen seeds, bench latency")
    add_flags(sim, SimPlan)
    real = sub.add_parser("real", help="real tub: train on 0-799, test on 800-999")
    real.add_argument("--tub", type=Path, required=True)
    for sub_parser, default_models, epochs in (
        (sim, ["fast", "linear", "pilotnet"], 6),
        (real, ["fast"], 80),
    ):
        sub_parser.add_argument("--out", type=Path, required=True)
        sub_parser.add_argument("--model", nargs="+", default=default_models, choices=ARCHITECTURES)
        sub_parser.add_argument("--epochs", type=int, default=epochs)
        sub_parser.add_argument("--patience", type=int, default=epochs)
        sub_parser.add_argument("--seed", type=int, default=0)
        augment.add_arguments(sub_parser)
        # Mirror images only: the measured recipe (the full default preset slows training
        # 2-3x and, on the real tub, keeps the training error at the mean baseline).
        sub_parser.set_defaults(augment="none", aug_flip=0.5)
    args = parser.parse_args(argv)
    if args.what == "sim":
        plan = from_flags(SimPlan, args)
        result = sim_acceptance(args.out, args.model, options(args), plan)
        for name, model in result["models"].items():
            worst = min(d["autonomy"] for d in model["drives"].values())
            crashes = sum(d["interventions"] for d in model["drives"].values())
            verdict = "PASS" if model["passed"] else "FAIL"
            print(
                f"{name:>9}: trained in {model['train_seconds']:.0f} s; on seeds {list(plan.test_seeds)}: "
                f"min autonomy {worst:.3f}, interventions {crashes} -> {verdict}"
            )
        if "latency" in result:
            print(f"latency: {json.dumps(result['latency'])}")
    else:
        result = real_acceptance(args.tub, args.out, options(args))
        print(
            f"real tub: test steering MSE {result['test_steering_mse']:.4f} vs mean baseline "
            f"{result['mean_baseline_mse']:.4f} -> ratio {result['ratio']:.3f} (goal <= 0.5): "
            f"{'PASS' if result['passed'] else 'FAIL'}"
        )
    print(json.dumps(result, indent=2))
