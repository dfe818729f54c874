"""Frames in memory -> tf.data pipelines: shuffle, augment (training only), batch, normalise.

Shapes: camera frames (N, 120, 160, 3) uint8
    -> [training: augment the camera frame, label-aware] -> car.frames.prepare_frame
    -> (B, H, W, C) uint8 batches -> x * scale + offset = car.frames.normalise, float32

Preparation is done by the car's own `prepare_frame`, so training and driving cannot
drift. Without augmentation the frames are prepared once up front. With augmentation the
geometric ops run on the camera frame (shifts are in camera pixels, where their steering
correction is defined), then `prepare_frame`, then the photometric ops on the small
prepared frame; one `augment_batch` call per batch (a Python call per frame from tf.data
costs more than the augmentation itself), batches in parallel threads.

The training pipeline repeats forever and `fit` is given `steps_per_epoch`; each drawn
sample gets a running number that keys the augmenter, so a run is reproducible from its
seed while every epoch still sees fresh augmentations.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Protocol

import numpy as np

from car.frames import FrameSpec, prepare_frame


class BatchAugmenter(Protocol):
    """What training needs of an augmenter (augment.Augmenter is one)."""

    def augment_batch(
        self,
        images: np.ndarray,
        angles: np.ndarray,
        throttles: np.ndarray,
        keys: np.ndarray,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def prepare_all(images: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """(N, h, w, 3) camera frames -> (N, H, W, C) uint8 model frames, by car.frames.prepare_frame."""
    prepared = np.empty((len(images), *spec.input_shape), dtype=np.uint8)
    for position, image in enumerate(images):
        prepared[position] = prepare_frame(image, spec)
    return prepared


def normalise_batch(spec: FrameSpec):
    """The tf twin of car.frames.normalise (same float32 arithmetic): uint8 -> float32."""
    import tensorflow as tf

    scale, offset = np.float32(spec.scale), np.float32(spec.offset)

    def normalise(images, labels):
        return tf.cast(images, tf.float32) * scale + offset, labels

    return normalise


def labels_of(angles: np.ndarray, throttles: np.ndarray) -> dict[str, np.ndarray]:
    return {"angle": angles.astype(np.float32)[:, None], "throttle": throttles.astype(np.float32)[:, None]}


def training_dataset(
    images: np.ndarray,
    angles: np.ndarray,
    throttles: np.ndarray,
    spec: FrameSpec,
    batch_size: int,
    seed: int,
    augment: BatchAugmenter | None = None,
):
    """Endless shuffled batches of (normalised images, {angle, throttle}) for `fit`.

    `images` are camera frames when `augment` is given, else already prepared frames.
    """
    import tensorflow as tf

    count = len(angles)
    indexes = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
    if augment is None:
        frames, labels = tf.constant(images), labels_of(angles, throttles)
        samples = indexes.map(lambda i: (tf.gather(frames, i), {k: tf.gather(v, i) for k, v in labels.items()}))
        return samples.batch(batch_size).map(normalise_batch(spec)).prefetch(tf.data.AUTOTUNE)

    prepare = partial(prepare_frame, spec=spec)

    def augment_numpy(draws: np.ndarray, picks: np.ndarray):  # (B,) running sample numbers, (B,) indexes
        return augment.augment_batch(images[picks], angles[picks], throttles[picks], draws, prepare)

    def augment_tf(draws, picks):
        batch, angle, throttle = tf.numpy_function(
            augment_numpy, [draws, picks], [tf.uint8, tf.float32, tf.float32], stateful=False
        )
        batch.set_shape((None, *spec.input_shape))  # (B, H, W, C) uint8
        return batch, {"angle": tf.reshape(angle, (-1, 1)), "throttle": tf.reshape(throttle, (-1, 1))}

    batches = indexes.enumerate().batch(batch_size).map(augment_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.map(normalise_batch(spec)).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(prepared: np.ndarray, angles: np.ndarray, throttles: np.ndarray, spec: FrameSpec, batch_size: int = 256):
    """Prepared frames in order, batched and normalised, for evaluation and early stopping."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((prepared, labels_of(angles, throttles)))
    return dataset.batch(batch_size).map(normalise_batch(spec)).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches that show each training frame once per epoch on average."""
    return max(1, -(-count // batch_size))
