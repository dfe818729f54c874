"""Random hyperparameter search: the best model by one metric, under a latency budget.

    tubcar search --tub data/tubs --trials 20                       # dev steering MSE
    tubcar search --tub data/tubs --trials 20 --fine-trials 10      # coarse to fine
    tubcar search --tub data/train --trials 12 --objective autonomy --autonomy-tub data/held_out

Draws learning rate (log scale), batch size, dropout, L2 (log scale) and width; each
trial is a full training run with export. Trials whose exported model misses the Pi
latency budget are infeasible. Writes trials.csv (best first) and best/ (the winning
bundle) into --out, and registers the winner in the models registry. Run the same
command again to resume an interrupted search.
"""

import argparse
from pathlib import Path

import augment
from training.cli import add_data_arguments, record_filter, split_config
from training.fit import FitConfig
from training.latency import DEFAULT_BUDGET_MS, PI4_SCALE_FACTOR
from training.models import ARCHITECTURES
from training.registry import DEFAULT_INDEX, append_run
from training.search import OBJECTIVES, SearchConfig, is_search_chief, run_search
from training.train import TrainOptions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tubcar search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("runs/search"), help="search folder (default %(default)s)"
    )
    parser.add_argument("--trials", type=int, default=10, help="random trials of the (coarse) stage")
    parser.add_argument("--fine-trials", type=int, default=0, help="then this many trials around the best")
    parser.add_argument(
        "--fine-from", type=int, default=3, help="best coarse trials that span the fine ranges"
    )
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="dev_mse",
        help="optimising metric: dev steering MSE, or closed-loop replay autonomy",
    )
    parser.add_argument(
        "--autonomy-tub", type=Path, help="held-out tub replayed closed loop (--objective autonomy)"
    )
    parser.add_argument("--model", choices=ARCHITECTURES, default="fast", help="architecture searched")
    parser.add_argument(
        "--epochs", type=int, default=FitConfig.epochs, help="epochs per trial (early stopping on)"
    )
    parser.add_argument("--patience", type=int, default=FitConfig.patience, help="early stopping patience")
    parser.add_argument(
        "--quantize", default="auto", help="export quantisation of every trial (as tubcar train)"
    )
    parser.add_argument(
        "--latency-budget-ms",
        type=float,
        default=DEFAULT_BUDGET_MS,
        help="satisficing metric: Pi 4 latency a trial must meet (default %(default)s)",
    )
    parser.add_argument(
        "--pi-scale-factor",
        type=float,
        default=PI4_SCALE_FACTOR,
        help="assumed Pi 4 / this machine latency ratio",
    )
    parser.add_argument(
        "--registry", type=Path, default=DEFAULT_INDEX, help="models registry (default %(default)s)"
    )
    augment.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int | None:
    args = parse_args(argv)
    base = TrainOptions(
        architecture=args.model,
        fit=FitConfig(epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=0),
        split=split_config(args),
        rules=record_filter(args),
        quantization=args.quantize,
        budget_ms=args.latency_budget_ms,
        pi_scale_factor=args.pi_scale_factor,
        augment=augment.config_from_args(args),
        workers=args.workers,
    )
    config = SearchConfig(
        trials=args.trials,
        objective=args.objective,
        latency_budget_ms=args.latency_budget_ms,
        autonomy_tub=args.autonomy_tub,
        fine_trials=args.fine_trials,
        fine_from=args.fine_from,
        seed=args.seed,
    )
    result = run_search(args.tub, args.out, base, config)
    if not is_search_chief():
        return 0
    print(f"\n{len(result.rows)} trials, best first: {result.table}")
    if result.best is None:
        print(
            f"no trial met the latency budget of {args.latency_budget_ms:g} ms: "
            "raise it or search smaller models"
        )
        return 1
    best = result.best
    print(
        f"best trial {best['trial']} ({best['stage']}): score {best['score']:.4g}, "
        f"dev MSE {best['dev_mse']:.4f}, "
        f"Pi latency ~{best['pi_estimate_ms']:.2f} ms (p99 estimate); bundle {result.best_bundle}"
    )
    entry = append_run(
        result.best_bundle,
        args,
        index=args.registry,
        extra={"search": {k: v for k, v in best.items() if k != "trial_dir"}},
    )
    print(f"registered as {entry['run_id']} in {args.registry}")
    return 0
