"""A picture of what training sees: original frames beside augmented copies, with labels.

Each row is one recorded frame: first the original, then augmented versions, both as
the model sees them when a frame preparation is given (crop and resize first, as in
training: the photometric ops then work on the small frame). Every
tile shows its steering as an arrow from the bottom centre (left/right as the label
says) and its angle, throttle and the transforms that fired, so a flipped frame with
a mirrored arrow, or a shifted one with a corrected arrow, can be checked by eye.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from augment.transforms import Augmenter

SHORT_NAMES = {
    "HorizontalFlip": "flip",
    "Shift": "shift",
    "RandomShadow": "shadow",
    "RandomBrightnessContrast": "bright",
    "RandomGamma": "gamma",
    "HueSaturationValue": "colour",
    "GaussianBlur": "blur",
    "MotionBlur": "mblur",
    "GaussNoise": "noise",
}


DISPLAY_WIDTH = 160  # small model inputs are enlarged (nearest pixel) to this width to draw on


def draw_steering(image: np.ndarray, angle: float, colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of the frame with an arrow for the steering label (+1 = full right = 45 deg)."""
    import cv2

    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    scale = max(1, DISPLAY_WIDTH // image.shape[1])
    canvas = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        if scale > 1
        else image.copy()
    )
    height, width = canvas.shape[:2]
    base = (width // 2, height - 2)
    heading = math.radians(45.0 * angle)
    length = height * 0.35
    tip = (int(base[0] + length * math.sin(heading)), int(base[1] - length * math.cos(heading)))
    cv2.arrowedLine(canvas, base, tip, colour, 2, cv2.LINE_AA, tipLength=0.25)
    return canvas


def preview_grid(
    samples: list[tuple[np.ndarray, float, float]],
    augmenter: Augmenter,
    variants: int,
    out: str | Path,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Path:
    """Save a PNG grid: one row per sample, original first, then `variants` augmented copies.

    `prepare` (e.g. `car.frames.prepare_frame` with the model's FrameSpec) is applied as
    training applies it, so the tiles are model inputs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(samples), variants + 1
    figure, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.0 * rows), squeeze=False)
    for row, (image, angle, throttle) in enumerate(samples):
        tiles = [(prepare(image) if prepare else image, angle, throttle, "original")]
        for variant in range(variants):
            result = augmenter.apply(image, angle, throttle, key=row * variants + variant, prepare=prepare)
            names = ",".join(SHORT_NAMES.get(n, n) for n in result.applied) or "none fired"
            tiles.append((result.image, result.angle, result.throttle, names))
        for col, (tile, tile_angle, tile_throttle, caption) in enumerate(tiles):
            axis = axes[row, col]
            colour = (0, 255, 0) if col == 0 else (255, 60, 60)
            axis.imshow(draw_steering(tile, tile_angle, colour))
            axis.set_title(f"a={tile_angle:+.2f} t={tile_throttle:.2f}\n{caption}", fontsize=6.5)
            axis.axis("off")
    height, width = tiles[0][0].shape[:2]
    figure.suptitle(
        f"augmentation preview ({augmenter.config.preset} preset, seed {augmenter.seed}), "
        f"{width}x{height} frames as training sees them; arrow = steering label",
        fontsize=9,
    )
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
