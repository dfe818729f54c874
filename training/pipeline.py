"""Frames in memory -> tf.data pipelines: shuffle, augment (training only), batch, normalise.

Shapes: camera frames (N, 120, 160, 3) uint8
    -> [training: augment the camera frame, label-aware] -> car.frames.prepare_frame
    -> (B, H, W, C) uint8 batches -> x * scale + offset = car.frames.normalise, float32

Preparation is done by the car's own `prepare_frame`, so training and driving cannot
drift. Without augmentation the frames are prepared once up front. With augmentation the
camera frame is augmented first (shifts are in camera pixels, where their steering
correction is defined) and prepared afterwards, in parallel threads.

The training pipeline repeats forever and `fit` is given `steps_per_epoch`; each drawn
sample gets a running number that keys the augmenter, so a run is reproducible from its
seed while every epoch still sees fresh augmentations.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from car.frames import FrameSpec, prepare_frame

Augment = Callable[..., tuple[np.ndarray, float, float]]


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
    augment: Augment | None = None,
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
    else:

        def augment_one(draw: np.int64, index: np.int64):
            image, angle, throttle = augment(images[index], float(angles[index]), float(throttles[index]), key=int(draw))
            return prepare_frame(image, spec), np.float32(angle), np.float32(throttle)

        def augment_tf(draw, index):
            image, angle, throttle = tf.numpy_function(
                augment_one, [draw, index], [tf.uint8, tf.float32, tf.float32], stateful=False
            )
            image.set_shape(spec.input_shape)
            return image, {"angle": tf.reshape(angle, (1,)), "throttle": tf.reshape(throttle, (1,))}

        samples = indexes.enumerate().map(augment_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return samples.batch(batch_size).map(normalise_batch(spec)).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(prepared: np.ndarray, angles: np.ndarray, throttles: np.ndarray, spec: FrameSpec, batch_size: int = 256):
    """Prepared frames in order, batched and normalised, for evaluation and early stopping."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((prepared, labels_of(angles, throttles)))
    return dataset.batch(batch_size).map(normalise_batch(spec)).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches that show each training frame once per epoch on average."""
    return max(1, -(-count // batch_size))
