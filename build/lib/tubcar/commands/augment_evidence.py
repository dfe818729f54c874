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
from training.flags import add_flags, from_flags


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(
        prog="tubcar augment-evidence",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for tub, models and results")
    add_flags(parser, EvidencePlan)
    args = parser.parse_args(argv)
    results = run_evidence(from_flags(EvidencePlan, args), args.out)
    print((args.out / "evidence.md").read_text())
    print(
        f"wrote {args.out / 'evidence.json'}, evidence.md and evidence.png ({len(results['models'])} models)"
    )
