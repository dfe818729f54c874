"""albumentations transforms that do a whole group of frames in one call.

albumentations hands a stack of frames (`images=`) to most transforms one frame at a
time (`BasicTransform.apply_to_images` loops `apply`). On the fast model's 80x40
frames the cost of each call (decorators, checks, a shadow mask rasterised again) is
most of the work, and a group of frames shares one random draw anyway (see
augment/transforms.py). Each class here keeps its albumentations parent's parameters,
random draws and pixel arithmetic and changes only how the stack reaches it; the tests
assert every one gives exactly the parent's per-frame result.

The classes carry their parents' names, so the applied-transform records that labels
and previews read (`Compose(save_applied_params=True)`) name the transform as usual.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np
from albucore import clip
from albumentations.core.transforms_interface import BasicTransform


class RandomShadow(A.RandomShadow):
    """The polygons are the same for every frame of the group: rasterise each once, darken the stack."""

    def apply_to_images(
        self, images: np.ndarray, vertices_list: list[np.ndarray], intensities: np.ndarray, **params: Any
    ) -> np.ndarray:
        shadowed = images.copy()
        for vertices, intensity in zip(vertices_list, intensities):
            mask = np.zeros(images.shape[1:3], np.uint8)
            cv2.fillPoly(mask, [vertices], (255,))
            inside = mask == 255
            shadowed[:, inside] = clip(shadowed[:, inside] * (1 - intensity), np.uint8, inplace=True)
        return shadowed


class HueSaturationValue(A.HueSaturationValue):
    """Colour is a per-pixel map: the group goes in as one tall (G*H, W, 3) image, a free reshape."""

    def apply_to_images(self, images: np.ndarray, *args: Any, **params: Any) -> np.ndarray:
        frames, height, width, channels = images.shape
        return self.apply(images.reshape(frames * height, width, channels), **params).reshape(images.shape)


class GaussNoise(A.GaussNoise):
    """albumentations draws one noise map for a stack (from its first frame): broadcast it to all."""

    def apply_to_images(self, images: np.ndarray, *args: Any, **params: Any) -> np.ndarray:
        return self.apply(images, **params)


class PadIfNeeded(A.PadIfNeeded):
    """PadIfNeeded pads a stack with np.pad; albumentations' default frame-by-frame loop
    (OpenCV's copyMakeBorder on each frame) is faster."""

    apply_to_images = BasicTransform.apply_to_images
