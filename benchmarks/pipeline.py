"""Does the augmenting input pipeline keep up with training? `bench.py pipeline --json`.

Four rates, all in images/s, on the real 1,000-frame Donkey tub held in memory:
- pipeline_images_per_s: training's own pipeline (training/pipeline.py: draw plan, worker
  processes of training/augment_workers.py, tf.data) with the chosen augmentation,
  drained as fast as possible, no model attached;
- train_images_per_s: how fast the model consumes batches it does not wait for
  (batches precomputed in memory): the rate the pipeline must beat;
- train_augmented_images_per_s: `fit` fed by the augmenting pipeline, end to end;
- augment_batch_images_per_s: the augmentation alone (`Augmenter.augment_batch` with
  `prepare=`, one thread, no tf.data): what one worker process can reach.
`pipeline_to_train_ratio` must be >= 3. Both share the same CPU cores, so the end-to-end
rate shows what the contention costs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.real_tub import extract_donkey_tub


def add_arguments(parser: argparse.ArgumentParser) -> None:
    import augment

    parser.add_argument("--tub", help="tub to read frames from (default: the shared Donkey tub)")
    parser.add_argument("--architecture", default="fast", help="model to train (default: fast)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=150, help="batches to time for each rate")
    parser.add_argument(
        "--augment-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="augmenting processes, as scripts/train.py (default: one per CPU core)",
    )
    augment.add_arguments(parser)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import tensorflow as tf

    import augment
    from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE
    from car.tub import Tub
    from training.augment_workers import AugmentedBatches
    from training.fit import FitConfig, compile_model
    from training.models import build_model, default_frame_spec
    from training.pipeline import augmented_dataset, prepare_all, training_dataset

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(args.tub) if args.tub else extract_donkey_tub(Path(scratch))
        records = list(Tub(source).records(load_images=True))
    images = np.stack([r[CAMERA_IMAGE] for r in records])  # (N, 120, 160, 3) uint8
    angles = np.array([r[USER_ANGLE] for r in records], np.float32)
    throttles = np.array([r[USER_THROTTLE] for r in records], np.float32)
    config = augment.config_from_args(args)
    spec = default_frame_spec(args.architecture, images.shape[2], images.shape[1])
    augmenter = augment.build_augmenter(config, seed=0) if config.enabled else None

    augment_rate = _augment_rate(augmenter, images, angles, throttles, spec, args.batches, args.batch_size)
    plain = training_dataset(prepare_all(images, spec), angles, throttles, spec, args.batch_size, seed=0)
    model = build_model(args.architecture, spec.input_shape)
    compile_model(model, FitConfig(verbose=0), steps_per_epoch=args.batches)
    if augmenter is None:
        pipeline_rate = _drain_rate(plain, args.batches, args.batch_size)
        train_rate = end_to_end_rate = _fit_rate(model, plain, args.batches, args.batch_size)
    else:
        with AugmentedBatches(images, angles, throttles, augmenter, spec, args.augment_workers) as batches:
            augmented = augmented_dataset(batches, spec, args.batch_size, seed=0)
            pipeline_rate = _drain_rate(augmented, args.batches, args.batch_size)
            end_to_end_rate = _fit_rate(model, augmented, args.batches, args.batch_size)
        in_memory = plain.take(8).cache().repeat()  # batches that are always ready
        train_rate = _fit_rate(model, in_memory, args.batches, args.batch_size)
    return {
        "pipeline_images_per_s": round(pipeline_rate, 1),
        "train_images_per_s": round(train_rate, 1),
        "pipeline_to_train_ratio": round(pipeline_rate / train_rate, 2),
        "train_augmented_images_per_s": round(end_to_end_rate, 1),
        "augment_batch_images_per_s": round(augment_rate, 1) if augment_rate else None,
        "architecture": args.architecture,
        "batch_size": args.batch_size,
        "augment": config.preset if config.enabled else "none",
        "augment_group": config.group,
        "augment_workers": args.augment_workers if augmenter else 0,
        "cpu_threads": tf.config.threading.get_inter_op_parallelism_threads() or "auto",
    }


def _drain_rate(dataset, batches: int, batch_size: int) -> float:
    """Steady state: workers started and the batches they made ahead of time used up first."""
    iterator = iter(dataset)
    for _ in range(20):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


def _augment_rate(augmenter, images, angles, throttles, spec, batches: int, batch_size: int) -> float | None:
    """Augmentation + preparation alone, batch by batch on this thread."""
    import numpy as np

    from car.frames import prepare_frame

    if augmenter is None:
        return None
    prepare = lambda frame: prepare_frame(frame, spec)  # noqa: E731
    rng = np.random.default_rng(0)
    augmenter.augment_batch(
        images[:batch_size], angles[:batch_size], throttles[:batch_size], np.arange(batch_size), prepare
    )
    started = (
        time.perf_counter()
    )  # after the first call, which imports albumentations and builds the pipelines
    for batch in range(batches):
        picks = rng.integers(0, len(images), batch_size)
        keys = np.arange(batch * batch_size, (batch + 1) * batch_size)
        augmenter.augment_batch(images[picks], angles[picks], throttles[picks], keys, prepare)
    return batches * batch_size / (time.perf_counter() - started)


def _fit_rate(model, dataset, batches: int, batch_size: int) -> float:
    """Steady-state training rate: timed between batch ends, without fit's per-call start-up (~1-2 s)."""
    import keras

    warmup = 5
    batch_ends: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch_ends.append(time.perf_counter())
    )
    model.fit(dataset, steps_per_epoch=warmup + batches, epochs=1, verbose=0, callbacks=[clock])
    return batches * batch_size / (batch_ends[-1] - batch_ends[warmup - 1])
