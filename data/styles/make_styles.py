#!/usr/bin/env python3
"""Render the shipped style images procedurally (original works, CC0; see README.md).

    python data/styles/make_styles.py      # rewrites brushstrokes.png, mosaic.png, waves.png

Each is 256x256 and deterministic (fixed seeds). They are chosen to look nothing like a
taped indoor track: strong colours, hard edges and textures that a model must learn to
ignore while it keeps to the lane lines.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIZE = 256
HERE = Path(__file__).resolve().parent


def brushstrokes(rng: np.random.Generator) -> np.ndarray:
    """Thousands of short, thick, swirling strokes in a warm-on-blue palette."""
    palette = np.array(
        [[30, 60, 140], [245, 200, 60], [230, 120, 40], [60, 120, 200], [250, 240, 200], [20, 30, 70]]
    )
    canvas = np.full((SIZE, SIZE, 3), (40, 70, 150), np.uint8)
    for _ in range(2600):
        x, y = rng.uniform(0, SIZE, 2)
        swirl = (
            np.arctan2(y - SIZE / 2, x - SIZE / 2) + np.pi / 2 + rng.normal(0, 0.3)
        )  # strokes circle the centre
        length = rng.uniform(6, 16)
        dx, dy = np.cos(swirl) * length, np.sin(swirl) * length
        colour = palette[rng.integers(len(palette))]
        cv2.line(
            canvas,
            (int(x - dx), int(y - dy)),
            (int(x + dx), int(y + dy)),
            tuple(int(c) for c in colour),
            int(rng.integers(2, 5)),
            cv2.LINE_8,
        )
    return canvas


def mosaic(rng: np.random.Generator) -> np.ndarray:
    """Voronoi tiles in saturated colours with dark grout, like a stained-glass window."""
    seeds = rng.uniform(0, SIZE, (140, 2))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    distance = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2  # (H, W, seeds)
    nearest = np.argsort(distance, axis=-1)
    first = np.take_along_axis(distance, nearest[..., :1], -1)[..., 0]
    second = np.take_along_axis(distance, nearest[..., 1:2], -1)[..., 0]
    hues = rng.integers(0, 180, len(seeds))
    hsv = np.stack(
        [
            hues[nearest[..., 0]],
            np.full((SIZE, SIZE), 220),
            rng.integers(150, 255, len(seeds))[nearest[..., 0]],
        ],
        -1,
    )
    tiles = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    grout = (np.sqrt(second) - np.sqrt(first)) < 2.0
    tiles[grout] = (25, 20, 15)
    return tiles


def waves(rng: np.random.Generator) -> np.ndarray:
    """Interfering wave bands in sea colours with foam crests."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    field = np.zeros((SIZE, SIZE))
    for _ in range(5):
        kx, ky = rng.normal(0, 3, 2)
        field += np.sin(
            2 * np.pi * (kx * xx + ky * yy) + rng.uniform(0, 2 * np.pi) + 2.5 * np.sin(2 * np.pi * yy)
        )
    field = (field - field.min()) / (field.max() - field.min())  # 0..1
    deep, shallow, foam = np.array([10, 40, 90]), np.array([40, 150, 170]), np.array([235, 245, 240])
    image = deep + (shallow - deep) * field[..., None]
    crest = np.clip((field - 0.66) / 0.12, 0, 1)[..., None]
    image = image * (1 - crest) + foam * crest
    return np.clip(image, 0, 255).astype(np.uint8)


def main() -> None:
    for seed, render in enumerate((brushstrokes, mosaic, waves)):
        image = render(np.random.default_rng(seed))
        path = HERE / f"{render.__name__}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
