"""The one frame -> model input function shared by the car and training."""

import numpy as np
import pytest

from car.frames import FrameSpec, model_input, normalise, prepare_frame, to_model_input


def gradient_frame() -> np.ndarray:
    rows = np.arange(120, dtype=np.uint8)[:, None]
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[..., 0] = rows  # red encodes the row, so crops are visible in the output
    frame[..., 2] = 200
    return frame


def test_crop_resize_and_colour_order():
    spec = FrameSpec(crop_top=40, crop_bottom=20, width=80, height=30, color="bgr")
    prepared = prepare_frame(gradient_frame(), spec)
    assert prepared.shape == (30, 80, 3) and prepared.dtype == np.uint8
    assert prepared[0, 0, 2] in (40, 41) and prepared[-1, 0, 2] in (98, 99)  # red moved to channel 2
    assert np.all(prepared[..., 0] == 200)


def test_normalise_and_gray():
    spec = FrameSpec(color="gray", scale=2 / 255, offset=-1)
    model_input = to_model_input(gradient_frame(), spec)
    assert model_input.shape == spec.input_shape == (120, 160, 1) and model_input.dtype == np.float32
    assert model_input.min() >= -1 and model_input.max() <= 1
    np.testing.assert_allclose(normalise(np.array([0, 255], np.uint8), spec), [-1, 1], atol=1e-6)


def test_wrong_frame_size_and_bad_spec_are_clear_errors():
    with pytest.raises(ValueError, match="320x240 but the model expects 160x120"):
        prepare_frame(np.zeros((240, 320, 3), np.uint8), FrameSpec())
    with pytest.raises(ValueError, match="nothing is left"):
        FrameSpec(crop_top=100, crop_bottom=20)
    with pytest.raises(ValueError, match="color"):
        FrameSpec(color="hsv")


@pytest.mark.parametrize(
    "spec",
    [
        FrameSpec(crop_top=40, width=80, height=40),  # fast: crop + resize, written in place
        FrameSpec(),  # linear: the whole frame
        FrameSpec(crop_top=40, width=200, height=66, color="bgr"),
        FrameSpec(crop_bottom=10, color="gray", scale=2 / 255, offset=-1),
    ],
)
def test_writing_into_a_given_buffer_gives_the_same_input(spec):
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)
    for dtype in ("float32", "uint8"):
        spec = FrameSpec(**{**spec.to_dict(), "dtype": dtype})
        expected = to_model_input(frame, spec)
        assert expected.dtype == dtype and expected.shape == spec.input_shape
        buffer = np.full((1, *spec.input_shape), 7, dtype)  # as the interpreter's input tensor
        written = to_model_input(frame, spec, out=buffer[0])
        assert np.shares_memory(written, buffer)
        np.testing.assert_array_equal(buffer[0], expected)
    np.testing.assert_array_equal(model_input(prepare_frame(frame, spec), spec), prepare_frame(frame, spec))


def test_uint8_input_is_the_prepared_frame_and_float_input_its_normalisation():
    frame = np.random.default_rng(1).integers(0, 256, (120, 160, 3), np.uint8)
    float_spec = FrameSpec(crop_top=40, width=80, height=40)
    uint8_spec = FrameSpec(crop_top=40, width=80, height=40, dtype="uint8")
    prepared = prepare_frame(frame, float_spec)
    np.testing.assert_array_equal(to_model_input(frame, uint8_spec), prepared)
    np.testing.assert_allclose(to_model_input(frame, float_spec), prepared / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="dtype"):
        FrameSpec(dtype="int8")
