"""Camera frame -> model input: the one function the car and training both call.

A model is only as good as the agreement between how its inputs were prepared in
training and on the car. The preparation is described by a `FrameSpec`, which the
model bundle (`model.json`) stores, so the car never re-derives it from its own config.

Shapes: camera frame (source_height, source_width, 3) uint8 RGB
    -> crop rows [crop_top, source_height - crop_bottom)
    -> resize to (height, width) if needed            = `prepare_frame`, uint8
    -> x * scale + offset, float32 (height, width, C)  = `normalise`

Training always normalises (Keras models take float input). An int8 bundle's model takes
the prepared uint8 frame itself (`FrameSpec.dtype == "uint8"`): its input quantisation
(scale, zero point) *is* `x * scale + offset`, so the car feeds the frame with no float
copy. `to_model_input` gives each model what it takes; with `out=` it writes in place
(the car passes the interpreter's own input buffer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

COLOR_ORDERS = ("rgb", "bgr", "gray")
INPUT_DTYPES = ("float32", "uint8")


@dataclass(frozen=True)
class FrameSpec:
    """How a camera frame becomes model input; stored in model.json.

    `dtype` is what the model takes: "float32", the normalised frame, or "uint8", the
    prepared frame, which the model's input quantisation normalises (int8 bundles).
    """

    source_width: int = 160
    source_height: int = 120
    crop_top: int = 0
    crop_bottom: int = 0
    width: int = 160
    height: int = 120
    color: str = "rgb"
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.color not in COLOR_ORDERS:
            raise ValueError(f"FrameSpec.color must be one of {COLOR_ORDERS}, got {self.color!r}")
        if self.dtype not in INPUT_DTYPES:
            raise ValueError(f"FrameSpec.dtype must be one of {INPUT_DTYPES}, got {self.dtype!r}")
        if self.crop_top < 0 or self.crop_bottom < 0:
            raise ValueError("FrameSpec crop_top/crop_bottom must be >= 0")
        if self.crop_top + self.crop_bottom >= self.source_height:
            raise ValueError(
                f"FrameSpec crops {self.crop_top}+{self.crop_bottom} rows of a "
                f"{self.source_height}-row frame: nothing is left"
            )
        if min(self.width, self.height, self.source_width, self.source_height) <= 0:
            raise ValueError("FrameSpec sizes must be positive")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def keeps_frame(self) -> bool:
        """Is the prepared frame the camera frame itself (no crop, no resize, RGB)?"""
        unchanged = (self.height, self.width) == (self.source_height, self.source_width)
        return unchanged and self.crop_top == self.crop_bottom == 0 and self.color == "rgb"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one model input."""
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_frame(frame: np.ndarray, spec: FrameSpec, out: np.ndarray | None = None) -> np.ndarray:
    """Crop, resize and reorder colours of an RGB uint8 frame; returns uint8 (H, W, C).

    `out`, a C-contiguous uint8 array of the input shape, receives the result (no
    allocation on the common rgb path).
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got {frame.shape}")
    if frame.shape[:2] != (spec.source_height, spec.source_width):
        raise ValueError(
            f"frame is {frame.shape[1]}x{frame.shape[0]} but the model expects "
            f"{spec.source_width}x{spec.source_height} camera frames"
        )
    if out is None:
        out = np.empty(spec.input_shape, np.uint8)
    cropped = frame[spec.crop_top : spec.source_height - spec.crop_bottom]
    resize = cropped.shape[:2] != (spec.height, spec.width)
    if spec.color == "rgb" and resize:
        cv2.resize(cropped, (spec.width, spec.height), dst=out, interpolation=cv2.INTER_AREA)
        return out
    if resize:
        cropped = cv2.resize(cropped, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    if spec.color == "rgb":
        out[...] = cropped
    elif spec.color == "bgr":
        out[...] = cropped[:, :, ::-1]
    else:
        out[..., 0] = cv2.cvtColor(np.ascontiguousarray(cropped), cv2.COLOR_RGB2GRAY)
    return out


def normalise(prepared: np.ndarray, spec: FrameSpec, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 prepared frame(s) -> float32 x * scale + offset (the input of every Keras model)."""
    out = np.multiply(prepared, np.float32(spec.scale), out=out, dtype=np.float32)
    return np.add(out, np.float32(spec.offset), out=out)


def model_input(prepared: np.ndarray, spec: FrameSpec, out: np.ndarray | None = None) -> np.ndarray:
    """Prepared uint8 frame(s) -> what the model takes: themselves (uint8 input) or normalised."""
    if spec.dtype == "float32":
        return normalise(prepared, spec, out)
    if out is None:
        return prepared
    out[...] = prepared
    return out


def to_model_input(frame: np.ndarray, spec: FrameSpec, out: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 camera frame -> the model's (height, width, channels) input, in `out` if given."""
    if spec.dtype == "uint8":
        return prepare_frame(frame, spec, out)
    return normalise(prepare_frame(frame, spec), spec, out)
