"""Evidence that augmentation generalises: train on one simulated track, drive on others.

    tubcar augment-evidence --out runs/augment-evidence            # full run (~2 min on 2 cores)
    tubcar augment-evidence --out /tmp/ev --epochs 3 --train-laps 2 --new-tracks 2 --looks 101

Records expert laps on --train-seed, trains the `fast` model once per augmentation
variant (none, flip only, default), then scores each model closed-loop on the training
track, on its shape with other looks, on other seeds and on other seeds through a poor
camera; also the mean predicted steering on straight road (the flip's bias fix).
With --styles, a fourth model trains on the tub plus its stylised copies.
Writes evidence.json, evidence.md (the README tables) and evidence.png into --out;
reuses the tub and trained models already in --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.augment_evidence import EvidencePlan, run_evidence


def main(argv: list[str] | None = None) -> int | None:
    defaults = EvidencePlan()
    parser = argparse.ArgumentParser(
        prog="tubcar augment-evidence",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for tub, models and results")
    parser.add_argument(
        "--train-seed", type=int, default=defaults.train_seed, help="the one track trained on"
    )
    parser.add_argument("--train-laps", type=int, default=defaults.train_laps)
    parser.add_argument("--expert-noise", type=float, default=defaults.expert_noise)
    parser.add_argument(
        "--looks",
        type=int,
        nargs="*",
        default=list(defaults.looks),
        help="style seeds: the training shape with these other looks",
    )
    parser.add_argument(
        "--new-tracks", type=int, nargs="*", default=list(defaults.new_tracks), help="other track seeds"
    )
    parser.add_argument(
        "--poor-camera",
        type=int,
        nargs="*",
        default=list(defaults.poor_camera),
        help="track seeds also driven with camera noise, blur and exposure drift",
    )
    parser.add_argument("--drive-laps", type=int, default=defaults.drive_laps)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--model", default=defaults.architecture, help="architecture to train")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--styles",
        nargs="*",
        default=[],
        metavar="STYLE_DIR",
        help="style folders (tubcar stylize train): adds a variant trained with stylised copies too",
    )
    args = parser.parse_args(argv)
    plan = EvidencePlan(
        train_seed=args.train_seed,
        train_laps=args.train_laps,
        expert_noise=args.expert_noise,
        looks=tuple(args.looks),
        new_tracks=tuple(args.new_tracks),
        poor_camera=tuple(args.poor_camera),
        drive_laps=args.drive_laps,
        epochs=args.epochs,
        architecture=args.model,
        seed=args.seed,
        style_dirs=tuple(args.styles),
    )
    results = run_evidence(plan, args.out)
    print((args.out / "evidence.md").read_text())
    print(
        f"wrote {args.out / 'evidence.json'}, evidence.md and evidence.png ({len(results['models'])} models)"
    )
