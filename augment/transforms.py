"""Label-aware image augmentation for steering models, built on albumentations.

A transform that changes geometry must change the label with it, or the model learns
a lie: a mirrored frame with the original steering teaches it to turn the wrong way.
So the transforms run in albumentations pipelines that record what they applied (the
flip records itself, see `Augmenter._flip`), and the labels are derived from that
record, in order, not from a second guess:

- shift by dx px   -> angle += shift_steer_per_px * dx (see augment/steering.py).
- HorizontalFlip   -> angle = -angle (throttle unchanged): removes a left/right bias.

Photometric ops (shadows, brightness/contrast, gamma, colour, blur, noise) leave the
labels alone; they make the model key on lane geometry rather than on one track's
light and colours.

Two stages, so that each op works on the fewest pixels it can:
1. the camera stage (the shift) runs on camera frames as recorded (RGB uint8, e.g.
   120x160x3), because the steering correction is defined in camera pixels;
2. `prepare=` (`car.frames.prepare_frame`: crop, resize) if given, then
3. the frame stage: the flip and the photometric ops, on the small model input (6x fewer
   pixels for the `fast` model's 80x40). A mirror commutes with cropping rows and with
   a symmetric resize, so flipping the prepared frame equals preparing the flipped one.

Determinism: each call draws its randomness from (seed, key) alone, so a call with the
same key gives the same result on any thread, in any process and in any order; training
passes running sample numbers as keys (training/pipeline.py's `draw_plan`).
Without a key, calls are numbered 0, 1, 2... in call order.

Speed: albumentations spends more time per call (parameter draws, checks, bookkeeping)
than on the pixels of a small frame. So `augment_batch` augments groups of
`config.group` consecutive samples with one draw each (albumentations' `images=`: one
set of parameters for a stack of frames), the same trade as "same_on_batch" in batch
augmentation libraries. The samples of a group are different, randomly drawn frames,
so the model still sees every combination over an epoch; groups of 8 make the default
pipeline 3-4x faster per core than one draw per frame (`scripts/bench.py pipeline
--aug-group 1` vs `8`, key `augment_batch_images_per_s`). Where albumentations would
still loop over the frames of a group, augment/grouped.py does the group in one call.
Training calls `augment_batch` once per batch, in worker processes
(training/augment_workers.py).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def build_camera_stage(config: AugmentConfig, height: int, width: int) -> Any:
    """The shift: pad by the largest shift (edge pixels repeated) and crop back at random.

    A crop of a padded frame is a whole-pixel translation at a tenth of the cost of
    albumentations' Affine; the applied pad and crop tell the shift exactly.
    """
    import albumentations as A  # heavy import kept out of `import augment`

    from augment import grouped

    if config.shift <= 0:
        return None
    sx, sy = int(config.shift_px), int(config.shift_y_px)
    shift = A.Sequential(
        [
            grouped.PadIfNeeded(height + 2 * sy, width + 2 * sx, border_mode=cv2.BORDER_REPLICATE, p=1.0),
            A.RandomCrop(height, width, p=1.0),
        ],
        p=config.shift,
    )
    return A.Compose([shift], save_applied_params=True)


def build_frame_stage(config: AugmentConfig) -> Any:
    """Shadows, brightness/contrast, gamma, colour, blur, sensor noise (last); see `_flip` for the flip.

    Transforms with p = 0 are left out: every transform in a Compose costs time per call.
    Shadow, colour and noise come from augment/grouped.py: the same transforms, a group per call.
    """
    import albumentations as A

    from augment import grouped

    kernel = _odd(config.blur_kernel)
    makers = [
        (
            config.shadow,
            lambda p: grouped.RandomShadow(
                shadow_roi=(0.0, 0.3, 1.0, 1.0),  # the road part of the frame
                num_shadows_limit=(1, 2),
                shadow_intensity_range=(config.shadow_intensity / 3.0, config.shadow_intensity),
                p=p,
            ),
        ),
        (
            config.brightness,
            lambda p: A.RandomBrightnessContrast(
                brightness_limit=config.brightness_limit, contrast_limit=config.brightness_limit, p=p
            ),
        ),
        (
            config.gamma,
            lambda p: A.RandomGamma(
                gamma_limit=(100.0 * (1.0 - config.gamma_limit), 100.0 * (1.0 + config.gamma_limit)), p=p
            ),
        ),
        (
            config.color,
            lambda p: grouped.HueSaturationValue(
                hue_shift_limit=config.color_strength * 180.0 / 6.0,  # OpenCV hue: 0..180
                sat_shift_limit=config.color_strength * 255.0,
                val_shift_limit=0.0,
                p=p,
            ),
        ),
        (
            config.blur,
            lambda p: A.OneOf(
                [A.GaussianBlur(blur_limit=(3, kernel)), A.MotionBlur(blur_limit=(3, kernel))], p=p
            ),
        ),
        (
            config.noise,
            lambda p: grouped.GaussNoise(std_range=(config.noise_std / 4.0, config.noise_std), p=p),
        ),
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
        self.frame_stage = self._seeded(build_frame_stage(config))
        self._camera_stages: dict[tuple[int, int], Any] = {}

    def _seeded(self, pipeline: Any) -> Any:
        if pipeline is not None:
            pipeline.set_random_state(self.numpy_random, self.python_random)
        return pipeline

    def camera_stage(self, height: int, width: int) -> Any:
        """The shift pipeline for camera frames of this size (the crop needs it)."""
        if (height, width) not in self._camera_stages:
            self._camera_stages[height, width] = self._seeded(build_camera_stage(self.config, height, width))
        return self._camera_stages[height, width]

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
        image = np.asarray(image)
        _check_frames(image[None])
        if key is None and self.config.enabled:
            with self._counter_lock:
                key = next(self._counter)
        # key is None only when the config is disabled: nothing is drawn, any key will do.
        images, angles, applied = self._augment_group(
            image[None], np.array([angle], np.float64), key or 0, prepare
        )
        return Augmented(images[0], float(angles[0]), float(throttle), applied)

    def augment_batch(
        self,
        images: np.ndarray,
        angles: np.ndarray,
        throttles: np.ndarray,
        keys: np.ndarray,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Augment B samples in one call: (B, H, W, 3) uint8 -> (B, h, w, c) uint8, (B,), (B,) float32.

        Samples go in groups of `config.group` consecutive ones; a group shares one random
        draw, keyed by its first sample's key, so a batch is reproducible from its keys.
        With `group` 1, sample i is exactly `apply(images[i], angles[i], throttles[i], keys[i])`.
        """
        _check_frames(images)
        size = self.config.group
        out_images, out_angles = [], []
        for start in range(0, len(images), size):
            group, group_angles, _ = self._augment_group(
                images[start : start + size],
                angles[start : start + size].astype(np.float64),
                int(keys[start]),
                prepare,
            )
            out_images.append(group)
            out_angles.append(group_angles)
        return (
            np.concatenate(out_images),
            np.concatenate(out_angles).astype(np.float32),
            throttles.astype(np.float32),
        )

    def _augment_group(
        self,
        images: np.ndarray,
        angles: np.ndarray,
        key: int,
        prepare: Callable[[np.ndarray], np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """(G, H, W, 3) frames and (G,) angles -> the same transforms, one draw, applied to all G."""
        applied: list[tuple[str, dict]] = []
        state = self._state() if self.config.enabled else None
        if state is not None:
            state.rekey(self.seed, int(key) & _UINT64)
            images = _run(state.camera_stage(*images.shape[1:3]), images, applied)
        if prepare is not None:
            images = np.stack([prepare(image) for image in images])
        if state is not None:
            images = self._flip(state, images, applied)
            images = _run(state.frame_stage, images, applied)
        angles, names = self._labels(angles, applied)
        return np.ascontiguousarray(images), angles, names

    def _flip(self, state: _ThreadState, images: np.ndarray, applied: list[tuple[str, dict]]) -> np.ndarray:
        """Mirror the group with probability `config.flip`, one frame at a time.

        albumentations' HorizontalFlip on a stack returns a reversed view that Compose then
        copies with NumPy, ~10x slower than OpenCV's flip of each frame (albucore.hflip,
        what HorizontalFlip does to a single image): a sixth of the whole augmentation.
        """
        from albucore import hflip

        if self.config.flip <= 0 or state.numpy_random.random() >= self.config.flip:
            return images
        applied.append(("HorizontalFlip", {}))
        return np.stack([hflip(image) for image in images])

    def _labels(
        self, angles: np.ndarray, applied: list[tuple[str, dict]]
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """Steering after what was actually applied, in order; and the names of what fired."""
        names, pad_left = [], 0
        for name, params in applied:
            if name == "HorizontalFlip":
                angles = -angles
            elif name == "PadIfNeeded":
                pad_left = params["pad_left"]
                continue
            elif name == "RandomCrop":
                shift_x = pad_left - params["crop_coords"][0]  # pixels the content moved right
                angles = angles + self.config.shift_steer_per_px * shift_x
                name = "Shift"
            names.append(name)
        return np.clip(angles, -1.0, 1.0), tuple(names)

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _ThreadState(self.config)
        return state

    def __getstate__(self) -> dict:
        """Pickle config and seed only (for worker processes); pipelines are rebuilt lazily."""
        return {"config": self.config, "seed": self.seed}

    def __setstate__(self, state: dict) -> None:
        Augmenter.__init__(self, state["config"], state["seed"])


def _run(pipeline: Any, images: np.ndarray, applied: list[tuple[str, dict]]) -> np.ndarray:
    """Apply one stage (or none) to a stack of frames, noting what it applied."""
    if pipeline is None:
        return images
    result = pipeline(images=images)
    applied += result["applied_transforms"]
    return result["images"]


def _check_frames(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(
            f"augmenter expects RGB uint8 (H, W, 3) frames, got {images.dtype} {images.shape[1:]}"
        )


def build_augmenter(config: AugmentConfig, seed: int = 0) -> Augmenter:
    """The one augmentation object training applies to its training split."""
    return Augmenter(config, seed)
