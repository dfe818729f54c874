"""Training throughput of each architecture with the default augmentation: `tubcar bench train --json`.

Images/s of `fit` as `tubcar train` runs it: the model built and compiled by the training
code (training/models.py, training/fit.py), fed by training's own input
(training/pipeline.py's `training_input`: the draw plan, the augmenting worker
processes, tf.data) with the default augmentation preset, on the real 1,000-frame
Donkey tub held in memory. The rate is the steady state, timed between batch ends
after a warm-up, so it leaves out fit's start-up and the per-epoch dev evaluation
(`tubcar acceptance sim` measures the whole run, data to bundle).

Keys: `linear_images_per_s`, `fast_images_per_s`, `pilotnet_images_per_s`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from training.fit import FitConfig

ARCHITECTURES = ("linear", "fast", "pilotnet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tub", help="tub to train on (default: the shared Donkey tub)")
    parser.add_argument("--model", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--batches", type=int, default=80, help="batches timed per architecture")
    parser.add_argument(
        "--augment-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="augmenting processes, as tubcar train (default: one per CPU core)",
    )
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=FitConfig.steps_per_execution,
        help="optimiser steps per call into TensorFlow (default: training's; 1 shows the per-call overhead)",
    )


def run(args: argparse.Namespace) -> dict:
    import keras

    import augment
    from benchmarks.pipeline import fit_rate
    from benchmarks.real_tub import extract_donkey_tub
    from training.data import load_frames
    from training.fit import compile_model
    from training.models import build_model, default_frame_spec
    from training.pipeline import prepare_all, training_input

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(args.tub) if args.tub else extract_donkey_tub(Path(scratch))
        frames, _ = load_frames([source], progress=False)
    config = augment.AugmentConfig()  # the default preset, as `tubcar train` uses it
    fit = FitConfig(verbose=0, steps_per_execution=args.steps_per_execution)
    result: dict = {}
    for architecture in args.model:
        spec = default_frame_spec(architecture, frames.images.shape[2], frames.images.shape[1])
        keras.utils.set_random_seed(0)
        model = build_model(architecture, spec.input_shape)
        compile_model(model, fit, steps_per_epoch=args.batches)
        augmenter = augment.build_augmenter(config, seed=0)
        prepared = prepare_all(frames.images, spec)
        with training_input(frames, prepared, spec, fit, augmenter, args.augment_workers) as train_data:
            rate = fit_rate(model, train_data, args.batches, fit.batch_size)
        result[f"{architecture}_images_per_s"] = round(rate, 1)
    result.update(
        batch_size=fit.batch_size,
        augment=config.preset,
        augment_workers=args.augment_workers,
        steps_per_execution=args.steps_per_execution,
        frames=len(frames),
        cpu_count=os.cpu_count(),
    )
    return result
