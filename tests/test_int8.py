"""int8 calibration: which frames calibrate, and the per-layer error that shows a clipped layer."""

from __future__ import annotations

import numpy as np
import pytest

import augment
from car.frames import FrameSpec
from training.data import Frames
from training.pipeline import representative_frames

SPEC = FrameSpec(crop_top=40, width=32, height=16)


def numbered_frames(count: int, seed: int = 0) -> Frames:
    """Camera frames whose every pixel holds the frame's number (mod 256), random labels."""
    rng = np.random.default_rng(seed)
    images = np.broadcast_to(
        (np.arange(count) % 256).astype(np.uint8)[:, None, None, None], (count, 120, 160, 3)
    )
    return Frames(
        images=np.ascontiguousarray(images),
        angles=rng.uniform(-1, 1, count).astype(np.float32),
        throttles=rng.uniform(0, 0.5, count).astype(np.float32),
        sessions=np.full(count, "tub#0"),
        indexes=np.arange(count),
    )


def test_calibration_spans_the_recording_and_both_ends_of_every_label():
    frames = numbered_frames(200)  # frame numbers 0..199 fit in a pixel: the prepared frame names its frame
    chosen = representative_frames(frames, SPEC, count=40)
    numbers = chosen[:, 0, 0, 0].astype(int)
    assert chosen.dtype == np.uint8 and chosen.shape[1:] == SPEC.input_shape
    assert numbers[0] == 0 and numbers[-1] == 199 and np.all(np.diff(numbers) > 0)  # in recording order
    for labels in (frames.angles, frames.throttles):
        assert {int(np.argmin(labels)), int(np.argmax(labels))} <= set(numbers)
    gaps = np.diff(numbers)
    assert gaps.max() <= 2 * 200 / 40  # evenly spread, not a random few


def test_every_other_calibration_frame_is_augmented_as_in_training():
    frames = numbered_frames(200)
    plain = representative_frames(frames, SPEC, count=40)
    augmenter = augment.build_augmenter(augment.AugmentConfig(), seed=0)
    augmented = representative_frames(frames, SPEC, count=40, augmenter=augmenter)
    np.testing.assert_array_equal(augmented[0::2], plain[0::2])
    changed = [not np.array_equal(a, p) for a, p in zip(augmented[1::2], plain[1::2], strict=True)]
    assert np.mean(changed) > 0.5


@pytest.mark.slow
def test_layer_errors_point_at_the_output_that_calibration_clipped():
    """angle (and throttle) = the mean pixel of the normalised frame: calibrated on dark frames,
    their range ends where bright frames begin, and the debugger shows the outputs clipped;
    calibrated on every brightness, nothing is."""
    import keras

    from training.quant_debug import ROUNDING_STEPS, layer_errors

    inputs = keras.Input(SPEC.input_shape, name="image")
    pixels = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1, name=name)(pixels) for name in ("angle", "throttle")])
    size = int(np.prod(SPEC.input_shape))
    for name, gain in (("angle", 1.0), ("throttle", 0.5)):  # gain x the mean pixel
        model.get_layer(name).set_weights(
            [np.full((size, 1), gain / size, np.float32), np.zeros(1, np.float32)]
        )

    def frames_lit(low: int, high: int, count: int) -> np.ndarray:  # brightness low..high evenly, plus noise
        levels = np.linspace(low, high, count).round().astype(int)[:, None, None, None]
        noise = np.random.default_rng(low).integers(-3, 4, (count, *SPEC.input_shape))
        return np.clip(levels + noise, 0, 255).astype(np.uint8)

    dark, everything, bright = frames_lit(0, 60, 32), frames_lit(0, 255, 32), frames_lit(180, 255, 16)
    narrow = {row["layer"]: row["rmse_steps"] for row in layer_errors(model, SPEC, dark, bright)}
    wide = {row["layer"]: row["rmse_steps"] for row in layer_errors(model, SPEC, everything, bright)}
    assert narrow["output angle"] > 5 * ROUNDING_STEPS > wide["output angle"]
    assert narrow["output throttle"] > 5 * ROUNDING_STEPS
    assert all(steps < 3 * ROUNDING_STEPS for layer, steps in wide.items())
