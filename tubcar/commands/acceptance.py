"""Measure the README's acceptance figures.

    tubcar acceptance sim --out runs/acceptance          # record, train 3 models, drive, bench
    tubcar acceptance real --tub data/tub --out runs/real [--folds 5] [--json]

`sim`: expert laps on --train-seeds -> train fast, linear, pilotnet (timed) -> int8 bundles
-> closed-loop drives on --test-seeds (never seen in training), scored as `tubcar sim
drive` scores them -> the default model (the first --model) on --unseen-seeds more seeds
the script picks and prints -> latency ratio, measured as `tubcar bench infer` measures it.
`real`: the real-data protocol (experiments/real_protocol.py): --folds contiguous blocks of
a real tub, each held out in turn with 1 s gaps, scored through the exported TFLite pilot
as steering MSE / predicting the mean, for the variants real, sim, sim_real,
sim_real200 and sim_mix side by side. --json prints only the summary object.
"""

import argparse
import json
import time
from pathlib import Path

import augment
from experiments.acceptance import SimPlan, sim_acceptance
from experiments.real_protocol import GOALS, RealPlan, real_protocol, recipes
from training.fit import FitConfig
from training.flags import add_flags, from_flags
from training.models import ARCHITECTURES
from training.train import TrainOptions, stages_text
from tubcar.errors import command_parser


def options(args: argparse.Namespace) -> TrainOptions:
    fit = FitConfig(epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=2)
    return TrainOptions(architecture=args.model[0], fit=fit, augment=augment.config_from_args(args))


def run_sim(args: argparse.Namespace) -> None:
    plan = from_flags(SimPlan, args)
    result = sim_acceptance(args.out, args.model, options(args), plan)
    for name, model in result["models"].items():
        worst = min(d["autonomy"] for d in model["drives"].values())
        crashes = sum(d["interventions"] for d in model["drives"].values())
        verdict = "PASS" if model["passed"] else "FAIL"
        print(
            f"{name:>9}: trained in {model['train_seconds']:.0f} s ({stages_text(model['train_stages'])}); "
            f"on seeds {list(plan.test_seeds)}: "
            f"min autonomy {worst:.3f}, interventions {crashes} -> {verdict}"
        )
    if "robustness" in result:
        robust = result["robustness"]
        worst = min(d["autonomy"] for d in robust["drives"].values())
        crashes = sum(d["interventions"] for d in robust["drives"].values())
        print(
            f"{robust['model']:>9}: {robust['laps']} laps on each unseen seed {robust['seeds']}: "
            f"min autonomy {worst:.3f}, interventions {crashes} -> {'PASS' if robust['passed'] else 'FAIL'}"
        )
    if "latency" in result:
        print(f"latency: {json.dumps(result['latency'])}")
    print(json.dumps(result, indent=2))


def run_real(args: argparse.Namespace) -> None:
    plan = from_flags(RealPlan, args)
    started = time.perf_counter()
    log = (lambda _: None) if args.json else print
    result = real_protocol(args.tub, args.out, recipes(args.seed), plan, log=log)
    summary = {key: result[key] for key in ("folds", *plan.variants)}
    if args.json:
        print(json.dumps(summary))
        return
    print(f"\nreal-data protocol on {args.tub}: held-out blocks {summary['folds']} (1 s gaps)")
    print("steering MSE / predicting the mean, per fold:")
    for variant in plan.variants:
        ratios = " ".join(f"{ratio:.3f}" for ratio in summary[variant]["ratios"])
        print(
            f"{variant:>12}: {ratios}  mean {summary[variant]['mean_ratio']:.3f}  "
            f"worst {summary[variant]['worst_ratio']:.3f}  goal: {GOALS[variant]}"
        )
    details = args.out / "acceptance_real.json"
    print(f"protocol wall time {time.perf_counter() - started:.0f} s; details in {details}")


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar acceptance", __doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    sim = sub.add_parser("sim", help="sim: train on a few seeds, drive unseen seeds, bench latency")
    add_flags(sim, SimPlan)
    sim.add_argument("--out", type=Path, required=True)
    sim.add_argument("--model", nargs="+", default=["fast", "linear", "pilotnet"], choices=ARCHITECTURES)
    # 6 epochs of the cosine schedule: `fast` and `linear` drove every test seed (and
    # `fast` the 10 unseen ones) as cleanly after 6 as after 12 (README, Results), so the
    # data -> drivable model time is half what 12 took.
    sim.add_argument("--epochs", type=int, default=6, help="epochs of each model (default: 6)")
    sim.add_argument(
        "--patience", type=int, default=6, help="early stopping; best dev epoch kept (default: 6)"
    )
    sim.add_argument("--seed", type=int, default=0)
    augment.add_arguments(sim)
    # Mirror images only: the measured recipe (the full default preset slows training
    # 2-3x and did not make the simulator's drives better).
    sim.set_defaults(augment="none", aug_flip=0.5, run=run_sim)

    real = sub.add_parser("real", help="real tub: the fold protocol, five variants side by side")
    real.add_argument("--tub", type=Path, required=True, help="the real tub")
    real.add_argument("--out", type=Path, required=True)
    real.add_argument("--seed", type=int, default=0, help="seeds every run (weights, order, augmentation)")
    real.add_argument("--json", action="store_true", help="print only the summary as one JSON object")
    add_flags(real, RealPlan)
    real.set_defaults(run=run_real)
    args = parser.parse_args(argv)
    args.run(args)
    return 0
