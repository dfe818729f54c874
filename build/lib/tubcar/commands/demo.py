"""The whole pipeline in a few minutes: record in the simulator -> train -> export -> drive.

    tubcar demo --out runs/demo

1. the expert drives --laps laps on each of --train-seeds tracks (with steering noise, so
   the tubs hold recoveries) -> tubs in OUT/tubs;
2. tubcar train's pipeline trains the `fast` model on them -> OUT/fast (report, plots);
3. the model is exported int8 (pilot.tflite + model.json) if it passes parity;
4. the bundle drives --drive-laps laps on --test-seed, a track it never saw, and the
   simulator prints its scores.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

import augment
from experiments.acceptance import drive_sim, record_sim
from training.fit import FitConfig
from training.train import TrainOptions, train


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--laps", type=int, default=3, help="expert laps recorded per training seed")
    parser.add_argument("--test-seed", type=int, default=101)
    parser.add_argument("--drive-laps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)

    print(f"1/4 recording {args.laps} expert laps on tracks {args.train_seeds} ...")
    tubs = record_sim(args.out / "tubs", args.train_seeds, args.laps, noise=0.3)
    print(f"2/4 training the fast model for up to {args.epochs} epochs ...")
    mirror_only = replace(augment.AugmentConfig.preset_named("none"), flip=0.5)  # fast, and enough in the sim
    options = TrainOptions(fit=FitConfig(epochs=args.epochs, verbose=2), augment=mirror_only)
    result = train(tubs, args.out / "fast", options)
    card = result.card
    print(
        f"3/4 exported {args.out / 'fast' / card.model_file} ({card.quantization}, "
        f"{card.latency.median_ms:.3f} ms median on this machine)"
    )
    print(f"4/4 driving {args.drive_laps} laps on track {args.test_seed}, never seen in training ...")
    drive = drive_sim(args.out / "fast", [args.test_seed], args.drive_laps)[str(args.test_seed)]
    print(json.dumps(drive, indent=2))
    print(
        f"\nscore: {drive['laps']} laps, autonomy {drive['autonomy']:.3f}, "
        f"interventions {drive['interventions']}, "
        f"mean cross-track error {drive['mean_cte']:.3f} m; report: {args.out / 'fast' / 'report.md'}"
    )
