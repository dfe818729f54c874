"""Frames in memory -> tf.data pipelines: shuffle, augment (training only), batch, normalise.

Shapes: camera frames (N, 120, 160, 3) uint8
    -> [training: augment the camera frame, label-aware] -> car.frames.prepare_frame
    -> (B, H, W, C) uint8 batches -> x * scale + offset = car.frames.normalise, float32

Preparation is done by the car's own `prepare_frame`, so training and driving cannot
drift. Without augmentation the frames are prepared once up front and tf.data shuffles
and batches them. With augmentation, `draw_plan` deals shuffled batches of frame indexes
and training/augment_workers.py augments and prepares each batch in worker processes;
tf.data only normalises and prefetches.

Training pipelines repeat forever and `fit` is given `steps_per_epoch`; each drawn
sample gets a running number that keys the augmenter, so a run is reproducible from its
seed while every epoch still sees fresh augmentations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from car.frames import FrameSpec, prepare_frame
from training.augment_workers import AugmentedBatches
from training.data import Frames
from training.fit import FitConfig

if TYPE_CHECKING:
    import tensorflow as tf

    from augment.transforms import Augmenter


def prepare_all(images: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """(N, h, w, 3) camera frames -> (N, H, W, C) uint8 model frames, by car.frames.prepare_frame.

    When the spec keeps the camera frame as it is (`linear`'s), the result is `images`
    itself, not a copy of a few hundred MB: never write into it.
    """
    if spec.keeps_frame:
        return images
    prepared = np.empty((len(images), *spec.input_shape), dtype=np.uint8)
    for position, image in enumerate(images):
        prepared[position] = prepare_frame(image, spec)
    return prepared


REPRESENTATIVE_FRAMES = 500  # int8 calibration frames (the converter's guide: 100-500)


def representative_frames(
    frames: Frames, spec: FrameSpec, count: int = REPRESENTATIVE_FRAMES, augmenter: Augmenter | None = None
) -> np.ndarray:
    """Prepared uint8 frames for int8 calibration, drawn across the whole training distribution.

    Calibration fixes the range of every tensor, and a value beyond it is clipped on the
    car. The output layers resist most: their range is that of the predictions seen in
    calibration, so frames that miss the sharpest turns clip the angle on them (on the real
    tub, 200 random training frames clipped it by up to 0.17). So the frames are the
    training frames with the most extreme labels (a tenth: hardest left and right, lowest
    and highest throttle) plus frames spread evenly over the recording order (every tub,
    session and stretch of track), and with an `augmenter` every other one is augmented as
    in training: the model was fitted to those too, and brightness, shadows and blur widen
    the ranges it meets.
    """
    per_end = max(1, count // 40)
    by_angle, by_throttle = (
        np.argsort(frames.angles, kind="stable"),
        np.argsort(frames.throttles, kind="stable"),
    )
    extremes = np.concatenate(
        [by_angle[:per_end], by_angle[-per_end:], by_throttle[:per_end], by_throttle[-per_end:]]
    )
    spread = np.linspace(0, len(frames) - 1, max(1, count - len(extremes))).round().astype(np.int64)
    picks = np.unique(np.concatenate([spread, extremes]))  # in recording order
    prepared = np.array(prepare_all(frames.images[picks], spec))  # a copy: half is overwritten below
    if augmenter is not None and len(picks) > 1:
        chosen = picks[1::2]
        keys = np.arange(len(chosen), dtype=np.uint64)
        prepared[1::2] = augmenter.augment_batch(
            frames.images[chosen],
            frames.angles[chosen],
            frames.throttles[chosen],
            keys,
            partial(prepare_frame, spec=spec),
        )[0]
    return prepared


def normalise_batch(spec: FrameSpec):
    """The tf twin of car.frames.normalise (same float32 arithmetic): uint8 -> float32."""
    import tensorflow as tf

    scale, offset = np.float32(spec.scale), np.float32(spec.offset)

    def normalise(images, labels):
        return tf.cast(images, tf.float32) * scale + offset, labels

    return normalise


PREFETCH_BATCHES = 4  # batches made ahead of the one being trained on or scored


def prefetched(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with PREFETCH_BATCHES batches made ahead, and tf.data's autotuner off.

    Why not AUTOTUNE: the autotuner's thread sleeps for a period that doubles while an
    iterator lives, and deleting the iterator waits for it to wake. At the end of `fit`
    that cost 17-19 s in 4 of 21 runs of the simulator acceptance's `fast` training
    (TensorFlow 2.21; gdb: the iterator's destructor waiting on Model::OptimizeLoop),
    when the whole training took 35 s; none in 18 runs with a fixed prefetch, whose
    epochs were no slower. Our pipelines have no parallel stage to tune.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


def labels_of(angles: np.ndarray, throttles: np.ndarray) -> dict[str, np.ndarray]:
    return {"angle": angles.astype(np.float32)[:, None], "throttle": throttles.astype(np.float32)[:, None]}


def training_dataset(
    prepared: np.ndarray,
    angles: np.ndarray,
    throttles: np.ndarray,
    spec: FrameSpec,
    batch_size: int,
    seed: int,
    weights: np.ndarray | None = None,
):
    """Endless shuffled batches of (normalised images, {angle, throttle}) from prepared frames, for `fit`;
    with `weights`, frames drawn in proportion to them (see `draw_plan`)."""
    import tensorflow as tf

    count = len(angles)
    if weights is None:
        indexes = (
            tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
        )
    else:
        indexes = tf.data.Dataset.from_generator(
            lambda: (i for _, picks in draw_plan(count, batch_size, seed, weights) for i in picks),
            output_signature=tf.TensorSpec((), tf.int64),
        )
    frames, labels = tf.constant(prepared), labels_of(angles, throttles)
    samples = indexes.map(lambda i: (tf.gather(frames, i), {k: tf.gather(v, i) for k, v in labels.items()}))
    return prefetched(samples.batch(batch_size).map(normalise_batch(spec)))


def draw_plan(
    count: int, batch_size: int, seed: int, weights: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (draws, picks) per batch: running sample numbers and frame indexes.

    Every frame once per epoch in a fresh seeded order; a batch may span two epochs. With
    `weights` (one per frame, e.g. real tubs 1, simulator tubs 0.3) frames are drawn with
    replacement in proportion to them instead: in expectation the loss each frame carries
    is its weight's share, as a weighted loss would give it.
    """
    rng = np.random.default_rng(seed)
    chances = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    order = np.empty(0, np.int64)
    for first_draw in range(0, 2**62, batch_size):
        if chances is not None:
            picks = rng.choice(count, size=batch_size, p=chances)
        else:
            while len(order) < batch_size:
                order = np.concatenate([order, rng.permutation(count)])
            picks, order = order[:batch_size], order[batch_size:]
        yield np.arange(first_draw, first_draw + batch_size, dtype=np.uint64), picks


BATCHES_PER_ELEMENT = 4  # batches the generator hands to tf.data at once (see augmented_dataset)


def augmented_dataset(
    source: AugmentedBatches,
    spec: FrameSpec,
    batch_size: int,
    seed: int,
    pipeline: tuple[int, int] = (0, 1),
    weights: np.ndarray | None = None,
):
    """Endless augmented batches of (normalised images, {angle, throttle}) for `fit`.

    `pipeline` (index, count): in a run of `count` workers, this one's share of each global
    batch of `batch_size`, the rows [index * share, (index + 1) * share) with share
    `batch_size // count`, so no worker augments frames that another trains on. The
    shares together are the single-worker batch (exactly so when the share is a multiple
    of the augmentation group).

    The generator yields BATCHES_PER_ELEMENT batches at a time and tf.data re-splits them:
    each element from Python costs tf.data a fixed amount of CPU in the training process,
    CPU that the augmenting workers share on a small machine.
    """
    import tensorflow as tf

    index, count = pipeline
    if batch_size % count or not 0 <= index < count:
        raise ValueError(f"a batch of {batch_size} cannot be shared by {count} workers as share {index}")
    share = batch_size // count
    rows = slice(index * share, (index + 1) * share)

    def mine(entry: np.ndarray) -> np.ndarray:  # this worker's rows of each of the element's batches
        return entry.reshape(BATCHES_PER_ELEMENT, batch_size)[:, rows].ravel()

    def plan() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for draws, picks in draw_plan(source.count, batch_size * BATCHES_PER_ELEMENT, seed, weights):
            yield mine(draws), mine(picks)

    signature = (
        tf.TensorSpec((None, *spec.input_shape), tf.uint8),
        tf.TensorSpec((None,), tf.float32),
        tf.TensorSpec((None,), tf.float32),
    )
    batches = tf.data.Dataset.from_generator(
        lambda: source.batches(plan()), output_signature=signature
    ).rebatch(share)
    labelled = batches.map(
        lambda images, angle, throttle: (images, {"angle": angle[:, None], "throttle": throttle[:, None]})
    )
    return prefetched(labelled.map(normalise_batch(spec)))


def worker_augmented_dataset(
    source: AugmentedBatches,
    spec: FrameSpec,
    batch_size: int,
    seed: int,
    context: tf.distribute.InputContext,
    weights: np.ndarray | None = None,
):
    """This worker's augmented batches, for `strategy.distribute_datasets_from_function`.

    `context` is the tf.distribute.InputContext: which input pipeline this is, of how many,
    and the per-replica batch size for this worker's local replicas.
    """
    share = augmented_dataset(
        source, spec, batch_size, seed, (context.input_pipeline_id, context.num_input_pipelines), weights
    )
    return share.rebatch(context.get_per_replica_batch_size(batch_size))


def evaluation_dataset(
    prepared: np.ndarray, angles: np.ndarray, throttles: np.ndarray, spec: FrameSpec, batch_size: int = 256
):
    """Prepared frames in order, batched and normalised, for evaluation and early stopping."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((prepared, labels_of(angles, throttles)))
    return prefetched(dataset.batch(batch_size).map(normalise_batch(spec)))


@contextmanager
def training_input(
    frames: Frames,
    prepared: np.ndarray,
    spec: FrameSpec,
    fit: FitConfig,
    augmenter: Callable | None = None,
    augment_workers: int = 0,
    per_worker: bool = False,
) -> Iterator[Any]:
    """The training split as `fit` takes it, for as long as the `with` block runs.

    Without an augmenter: shuffled batches of the `prepared` frames. With one: batches of
    the camera `frames` augmented and prepared by `augment_workers` processes (stopped
    when the block ends); `per_worker` (multi-worker runs) gives instead a function of
    tf.distribute's InputContext, so that each worker augments only its share of a batch.
    Weighted frames (`frames.weights`) are drawn in proportion to their weights.
    """
    weights = frames.weights
    if augmenter is None:
        yield training_dataset(
            prepared, frames.angles, frames.throttles, spec, fit.batch_size, fit.seed, weights
        )
        return
    with AugmentedBatches(
        frames.images, frames.angles, frames.throttles, augmenter, spec, augment_workers
    ) as batches:
        if per_worker:
            yield partial(worker_augmented_dataset, batches, spec, fit.batch_size, fit.seed, weights=weights)
        else:
            yield augmented_dataset(batches, spec, fit.batch_size, fit.seed, weights=weights)


def steps_per_epoch(count: int, batch_size: int, most_per_call: int = 1) -> int:
    """Batches that show each training frame about once per epoch, rounded to the nearest
    multiple of a call's steps into TensorFlow (`FitConfig.steps_per_execution`).

    A call never straddles an epoch's end, so an epoch of a prime number of batches (13 for
    the 800 frames of the real tub) would otherwise run one step a call, the slow way for
    small models. Calls of `most_per_call / 2` to `most_per_call` steps leave an epoch at
    most about one batch longer or shorter; epochs are nominal anyway (the data repeats
    endlessly, shuffled).
    """
    batches = max(1, -(-count // batch_size))
    if batches <= most_per_call:
        return batches
    candidates = range(max(1, -(-most_per_call // 2)), most_per_call + 1)
    rounded = [(max(1, round(batches / size)) * size, size) for size in candidates]
    return min(rounded, key=lambda steps_size: (abs(steps_size[0] - batches), -steps_size[1]))[0]
