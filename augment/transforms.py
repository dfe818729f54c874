"""Label-aware image augmentation for steering models, built on albumentations.

A transform that changes geometry must change the label with it, or the model learns
a lie: a mirrored frame with the original steering teaches it to turn the wrong way.
So the geometric ops run inside one albumentations pipeline that records what it
applied, and the labels are derived from that record, not from a second guess:

- HorizontalFlip   -> angle = -angle (throttle unchanged): removes a left/right bias.
- shift by dx px   -> angle += shift_steer_per_px * dx (see augment/steering.py).

Photometric ops (shadows, brightness/contrast, gamma, colour, blur, noise) leave the
labels alone; they make the model key on lane geometry rather than on one track's
light and colours.

The augmenter works on camera frames as recorded (RGB uint8, e.g. 120x160x3), before
`car.frames.prepare_frame` crops and resizes them, so shifts are in camera pixels. Given
`prepare=`, it runs that preparation between the geometric and the photometric stage,
so the pixel-heavy photometric ops work on the small model input (6x fewer pixels for
the `fast` model's 80x40): the difference between keeping up with training or not.

Determinism: each call draws its randomness from (seed, key) alone, so a call with the
same key gives the same result on any thread and in any order; tf.data's parallel map
stays reproducible when it passes a running sample number as key (training/pipeline.py).
Without a key, calls are numbered 0, 1, 2... in call order.

Speed: from tf.data, call `augment_batch` once per batch rather than the augmenter once
per frame; per-frame `tf.numpy_function` calls cost ~10x the augmentation itself.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from augment.config import AugmentConfig

_UINT64 = 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class Augmented:
    """One augmented sample and the names of the transforms that fired on it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB; the prepared frame when `prepare` was given
    angle: float
    throttle: float
    applied: tuple[str, ...]


def _odd(value: float) -> int:
    size = max(3, int(round(value)))
    return size if size % 2 else size + 1


def build_geometric(config: AugmentConfig, height: int, width: int) -> Any:
    """Flip, then shift: pad by the largest shift (edge pixels repeated) and crop back at random.

    A crop of a padded frame is a whole-pixel translation at a tenth of the cost of
    albumentations' Affine; the applied pad and crop tell the shift exactly.
    """
    import albumentations as A  # heavy import kept out of `import augment`

    sx, sy = int(config.shift_px), int(config.shift_y_px)
    stages = []
    if config.flip > 0:
        stages.append(A.HorizontalFlip(p=config.flip))
    if config.shift > 0:
        stages.append(
            A.Sequential(
                [
                    A.PadIfNeeded(height + 2 * sy, width + 2 * sx, border_mode=cv2.BORDER_REPLICATE, p=1.0),
                    A.RandomCrop(height, width, p=1.0),
                ],
                p=config.shift,
            )
        )
    return A.Compose(stages, save_applied_params=True) if stages else None


def build_photometric(config: AugmentConfig) -> Any:
    """Shadows, brightness/contrast, gamma, colour, blur, sensor noise (last); labels unchanged.

    Transforms with p = 0 are left out: every transform in a Compose costs time per call.
    """
    import albumentations as A

    kernel = _odd(config.blur_kernel)
    makers = [
        (config.shadow, lambda p: A.RandomShadow(
            shadow_roi=(0.0, 0.3, 1.0, 1.0),  # the road part of the frame
            num_shadows_limit=(1, 2),
            shadow_intensity_range=(config.shadow_intensity / 3.0, config.shadow_intensity),
            p=p,
        )),
        (config.brightness, lambda p: A.RandomBrightnessContrast(
            brightness_limit=config.brightness_limit, contrast_limit=config.brightness_limit, p=p
        )),
        (config.gamma, lambda p: A.RandomGamma(
            gamma_limit=(100.0 * (1.0 - config.gamma_limit), 100.0 * (1.0 + config.gamma_limit)), p=p
        )),
        (config.color, lambda p: A.HueSaturationValue(
            hue_shift_limit=config.color_strength * 180.0 / 6.0,  # OpenCV hue: 0..180
            sat_shift_limit=config.color_strength * 255.0,
            val_shift_limit=0.0,
            p=p,
        )),
        (config.blur, lambda p: A.OneOf(
            [A.GaussianBlur(blur_limit=(3, kernel)), A.MotionBlur(blur_limit=(3, kernel))], p=p
        )),
        (config.noise, lambda p: A.GaussNoise(std_range=(config.noise_std / 4.0, config.noise_std), p=p)),
    ]
    chosen = [make(p) for p, make in makers if p > 0]
    return A.Compose(chosen, save_applied_params=True) if chosen else None


class _ThreadState:
    """One thread's pipelines and random generators, re-keyed for every sample."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config
        self.bits = np.random.Philox()  # counter-based: re-keying is cheap, streams independent
        self.numpy_random = np.random.Generator(self.bits)
        self.python_random = random.Random()
        self.photometric = self._seeded(build_photometric(config))
        self._geometric: dict[tuple[int, int], Any] = {}

    def _seeded(self, pipeline: Any) -> Any:
        if pipeline is not None:
            pipeline.set_random_state(self.numpy_random, self.python_random)
        return pipeline

    def geometric(self, height: int, width: int) -> Any:
        """The flip/shift pipeline for frames of this size (the crop needs it)."""
        if (height, width) not in self._geometric:
            self._geometric[height, width] = self._seeded(build_geometric(self.config, height, width))
        return self._geometric[height, width]

    def rekey(self, seed: int, key: int) -> None:
        self.bits.state = {
            "bit_generator": "Philox",
            "state": {"counter": np.zeros(4, np.uint64), "key": np.array([seed, key], np.uint64)},
            "buffer": np.zeros(4, np.uint64),
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        self.python_random.seed(int(self.numpy_random.integers(2**63)))


class Augmenter:
    """Callable `(image, angle, throttle) -> (image, angle, throttle)` for the training split."""

    def __init__(self, config: AugmentConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = int(seed) & _UINT64
        self._counter = itertools.count()
        self._counter_lock = threading.Lock()
        self._local = threading.local()  # per thread: albumentations' random state is shared state

    def __call__(
        self,
        image: np.ndarray,
        angle: float,
        throttle: float,
        key: int | None = None,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, float, float]:
        out = self.apply(image, angle, throttle, key, prepare)
        return out.image, out.angle, out.throttle

    def apply(
        self,
        image: np.ndarray,
        angle: float,
        throttle: float,
        key: int | None = None,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Augmented:
        """Augment one sample; the same (seed, key) always gives the same result.

        With `prepare` (e.g. `lambda f: car.frames.prepare_frame(f, spec)`), geometry runs on
        the camera frame, then `prepare`, then the photometric ops on the smaller prepared
        frame: same labels, several times less work. Blur kernels are then in model pixels.
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"augmenter expects an RGB uint8 (H, W, 3) frame, got {image.dtype} {image.shape}")
        angle, applied = float(angle), []
        if self.config.enabled:
            if key is None:
                with self._counter_lock:
                    key = next(self._counter)
            state = self._state()
            state.rekey(self.seed, int(key) & _UINT64)
            geometric = state.geometric(*image.shape[:2])
            if geometric is not None:
                image, angle, names = self._geometry(geometric, image, angle)
                applied += names
        if prepare is not None:
            image = prepare(image)
        if self.config.enabled and state.photometric is not None:
            result = state.photometric(image=image)
            image = result["image"]
            applied += [name for name, _ in result["applied_transforms"]]
        return Augmented(image, angle, float(throttle), tuple(applied))

    def augment_batch(
        self,
        images: np.ndarray,
        angles: np.ndarray,
        throttles: np.ndarray,
        keys: np.ndarray,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Augment B samples in one call: (B, H, W, 3) uint8 -> (B, h, w, c) uint8, (B,), (B,) float32.

        Sample i is exactly `apply(images[i], angles[i], throttles[i], keys[i], prepare)`.
        Use this from tf.data with one `tf.numpy_function` per batch, not per frame: a
        Python call per frame from tf.data's threads costs far more than the augmentation.
        """
        results = [self.apply(image, a, t, int(k), prepare) for image, a, t, k in zip(images, angles, throttles, keys)]
        return (
            np.stack([r.image for r in results]),
            np.array([r.angle for r in results], np.float32),
            np.array([r.throttle for r in results], np.float32),
        )

    def _geometry(self, pipeline: Any, image: np.ndarray, angle: float) -> tuple[np.ndarray, float, list[str]]:
        """Apply flip/shift and derive the steering label from what was actually applied."""
        result = pipeline(image=image)
        names, pad_left = [], 0
        for name, params in result["applied_transforms"]:
            if name == "HorizontalFlip":
                angle = -angle
                names.append("HorizontalFlip")
            elif name == "PadIfNeeded":
                pad_left = params["pad_left"]
            elif name == "RandomCrop":
                shift_x = pad_left - params["crop_coords"][0]  # pixels the content moved right
                angle += self.config.shift_steer_per_px * shift_x
                names.append("Shift")
        return np.ascontiguousarray(result["image"]), min(1.0, max(-1.0, angle)), names

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _ThreadState(self.config)
        return state

    def __getstate__(self) -> dict:
        """Pickle config and seed only (for worker processes); pipelines are rebuilt lazily."""
        return {"config": self.config, "seed": self.seed}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["config"], state["seed"])


def build_augmenter(config: AugmentConfig, seed: int = 0) -> Augmenter:
    """The one augmentation object training applies to its training split."""
    return Augmenter(config, seed)
