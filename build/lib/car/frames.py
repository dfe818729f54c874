"""Camera frame -> model input: the one function the car and training both call.

A model is only as good as the agreement between how its inputs were prepared in
training and on the car. The preparation is described by a `FrameSpec`, which the
model bundle (`model.json`) stores, so the car never re-derives it from its own config.

Shapes: camera frame (source_height, source_width, 3) uint8 RGB
    -> crop rows [crop_top, source_height - crop_bottom)
    -> resize to (height, width) if needed            = `prepare_frame`, uint8
    -> x * scale + offset, float32 (height, width, C)  = `normalise`
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

COLOR_ORDERS = ("rgb", "bgr", "gray")


@dataclass(frozen=True)
class FrameSpec:
    """How a camera frame becomes model input; stored in model.json."""

    source_width: int = 160
    source_height: int = 120
    crop_top: int = 0
    crop_bottom: int = 0
    width: int = 160
    height: int = 120
    color: str = "rgb"
    scale: float = 1.0 / 255.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        if self.color not in COLOR_ORDERS:
            raise ValueError(f"FrameSpec.color must be one of {COLOR_ORDERS}, got {self.color!r}")
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
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one model input."""
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_frame(frame: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """Crop, resize and reorder colours of an RGB uint8 frame; returns uint8 (H, W, C)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got {frame.shape}")
    if frame.shape[:2] != (spec.source_height, spec.source_width):
        raise ValueError(
            f"frame is {frame.shape[1]}x{frame.shape[0]} but the model expects "
            f"{spec.source_width}x{spec.source_height} camera frames"
        )
    cropped = frame[spec.crop_top : spec.source_height - spec.crop_bottom]
    if cropped.shape[:2] != (spec.height, spec.width):
        cropped = cv2.resize(cropped, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    if spec.color == "bgr":
        cropped = cropped[:, :, ::-1]
    elif spec.color == "gray":
        cropped = cv2.cvtColor(cropped, cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.ascontiguousarray(cropped)


def normalise(prepared: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """uint8 prepared frame(s) -> float32 model input, x * scale + offset."""
    return prepared.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)


def to_model_input(frame: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """RGB uint8 camera frame -> float32 (height, width, channels) model input."""
    return normalise(prepare_frame(frame, spec), spec)
