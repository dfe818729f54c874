"""The whole pipeline in a few minutes: record in the simulator -> train -> export -> drive.

    tubcar demo --out runs/demo

1. the expert drives --laps laps on each of --train-seeds tracks (with steering noise, so
   the tubs hold recoveries) -> tubs in OUT/tubs;
2. tubcar train's pipeline trains the `fast` model on them -> OUT/fast (report, plots);
3. the model is exported int8 (pilot.tflite + model.json) if it passes parity;
4. the bundle drives --drive-laps laps on --test-seed, a track it never saw, and the
   simulator prints its scores.
The run and its score go into the models registry (--registry), and the demo ends with
three commands to try next on what it made.
"""

import json
import shlex
from dataclasses import replace
from pathlib import Path

import augment
from experiments.acceptance import drive_sim, record_sim
from training.fit import FitConfig
from training.registry import DEFAULT_INDEX, append_run, append_score
from training.train import TrainOptions, train
from tubcar.errors import command_parser


def main(argv: list[str] | None = None) -> int | None:
    parser = command_parser("tubcar demo", __doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--laps", type=int, default=3, help="expert laps recorded per training seed")
    parser.add_argument("--test-seed", type=int, default=101)
    parser.add_argument("--drive-laps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--registry", type=Path, default=DEFAULT_INDEX, help="models registry of the run")
    args = parser.parse_args(argv)

    print(f"1/4 recording {args.laps} expert laps on tracks {args.train_seeds} ...")
    tubs = record_sim(args.out / "tubs", args.train_seeds, args.laps, noise=0.3, progress=True)
    print(f"2/4 training the fast model for up to {args.epochs} epochs ...")
    mirror_only = replace(augment.AugmentConfig.preset_named("none"), flip=0.5)  # fast, and enough in the sim
    options = TrainOptions(fit=FitConfig(epochs=args.epochs, verbose=2), augment=mirror_only)
    bundle = args.out / "fast"
    result = train(tubs, bundle, options)
    card = result.card
    run = append_run(bundle, vars(args), index=args.registry, card=card)
    print(
        f"3/4 exported {args.out / 'fast' / card.model_file} ({card.quantization}, "
        f"{card.latency.median_ms:.3f} ms median on this machine)"
    )
    print(f"4/4 driving {args.drive_laps} laps on track {args.test_seed}, never seen in training ...")
    drive = drive_sim(bundle, (args.test_seed,), args.drive_laps)[str(args.test_seed)]
    append_score(bundle, drive, "sim", drive["track"], args.registry)
    print(json.dumps(drive, indent=2))
    print(
        f"\nscore: {drive['laps']} laps, autonomy {drive['autonomy']:.3f}, "
        f"interventions {drive['interventions']}, "
        f"mean cross-track error {drive['mean_cte']:.3f} m; report: {bundle / 'report.md'}; "
        f"registry: run {run['run_id']} in {args.registry}"
    )
    print("\nnext, try:")
    for command, why in next_commands(args.out, bundle, tubs[0], args.test_seed + 1, args.registry):
        print(f"  {command}\n      {why}")
    return 0


def next_commands(out: Path, bundle: Path, tub: Path, track: int, registry: Path) -> list[tuple[str, str]]:
    """Three commands to run on what the demo made, each with why (the README's next steps)."""
    paths = (bundle, out / f"drive-{track}.mp4", out / "movie.mp4")
    model, video, movie = (shlex.quote(str(path)) for path in paths)
    index = "" if registry == DEFAULT_INDEX else f" --index {shlex.quote(str(registry))}"
    return [
        (
            f"tubcar sim drive --model {model} --track {track} --laps 2 --video {video}",
            "watch it drive another track it never saw (the video has a steering/throttle gauge)",
        ),
        (
            f"tubcar movie --tub {shlex.quote(str(tub))} --model {model} --out {movie}",
            "what it would have steered on the laps it learnt from, beside what the expert did",
        ),
        (
            f"tubcar models ls{index}",
            "the run: its data, its errors against predicting the mean, its latency, its closed-loop score",
        ),
    ]
