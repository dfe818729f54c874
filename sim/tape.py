"""Finding a track's tape and straight structures in camera frames, for calibration.

Tape is brighter than the floor around it, so a frame's brightness minus its morphological
opening (a "top-hat" wider than any tape) leaves the tape and little else. Yellow tape is
also much yellower than the floor ((R + G) / 2 - B), white tape is bright and close to
grey. The point lists these functions return are what `sim.calibrate` fits lines to:
white tape centres row by row (sub-pixel), yellow dash centres, and near-vertical edges
above the floor (poles, posts, door frames: straight and vertical in the world).
Frames are RGB uint8 (H, W, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_OPENING = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31))  # wider than any tape at 160x120


@dataclass(frozen=True)
class TapeMasks:
    """Boolean masks (H, W) of yellow and white tape, and the brightness top-hat (int16)."""

    yellow: np.ndarray
    white: np.ndarray
    tophat: np.ndarray


def tape_masks(frame: np.ndarray) -> TapeMasks:
    """Where the yellow and the white tape are in a frame.

    Yellow: yellowness >= 60 and >= 25 above its surroundings, not dark. White: >= 40
    brighter than its surroundings, >= 185 bright, blue at least 3/4 of red-green (the
    olive floor and yellow tape have far less blue).
    """
    rgb = frame.astype(np.float32)
    value = frame.max(axis=2)
    tophat = value.astype(np.int16) - cv2.morphologyEx(value, cv2.MORPH_OPEN, _OPENING)
    red_green = (rgb[..., 0] + rgb[..., 1]) / 2.0
    yellowness = np.clip(red_green - rgb[..., 2], 0, 255).astype(np.uint8)
    yellow_tophat = yellowness.astype(np.int16) - cv2.morphologyEx(yellowness, cv2.MORPH_OPEN, _OPENING)
    yellow = (yellowness >= 60) & (yellow_tophat >= 25) & (value >= 100)
    white = (tophat >= 40) & (value >= 185) & (rgb[..., 2] >= 0.75 * red_green)
    return TapeMasks(yellow, white, tophat)


def row_runs(mask: np.ndarray, row: int) -> list[tuple[int, int]]:
    """(first, last) columns of each run of set pixels in one row."""
    columns = np.flatnonzero(mask[row])
    if len(columns) == 0:
        return []
    breaks = np.flatnonzero(np.diff(columns) > 1)
    starts = np.concatenate([[columns[0]], columns[breaks + 1]])
    ends = np.concatenate([columns[breaks], [columns[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def white_line_chains(
    frame: np.ndarray, first_row: int, min_length_px: float = 25.0, max_width_px: int = 25
) -> list[np.ndarray]:
    """Centre points (N, 2) of each white tape line below `first_row`, one per row: the
    brightness-weighted centre of the line's run in that row. Rows where the run touches
    the image border or splits are left out (their centre would be biased), as are each
    line's first and last two rows (tape ends)."""
    masks = tape_masks(frame)
    white = masks.white.copy()
    white[:first_row] = False
    white = cv2.morphologyEx(white.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(white, connectivity=8)
    width = frame.shape[1]
    chains = []
    for label in range(1, count):
        _, top, _, rows, area = stats[label]
        if rows < 0.6 * min_length_px or area < 30:
            continue
        points = []
        for row in range(top + 2, top + rows - 2):
            runs = row_runs(labels[row : row + 1] == label, 0)
            if len(runs) != 1:
                continue
            first, last = runs[0]
            if last - first + 1 > max_width_px or first <= 1 or last >= width - 2:
                continue
            lo, hi = max(first - 2, 0), min(last + 3, width)
            weights = np.clip(masks.tophat[row, lo:hi].astype(np.float64), 0, None)
            points.append((float((np.arange(lo, hi) * weights).sum() / weights.sum()), float(row)))
        chain = np.array(points)
        if len(chain) >= 10 and np.hypot(*np.ptp(chain, axis=0)) >= min_length_px:
            chains.append(chain)
    return chains


def yellow_dash_centres(frame: np.ndarray, first_row: int, min_area: int = 8) -> np.ndarray:
    """Centroids (N, 2) of the whole yellow dashes below `first_row` (dashes cut by the
    image border are left out: their centroid is not the dash's)."""
    yellow = tape_masks(frame).yellow.copy()
    yellow[:first_row] = False
    count, _, stats, centroids = cv2.connectedComponentsWithStats(yellow.astype(np.uint8), connectivity=8)
    height, width = yellow.shape
    whole = [
        k
        for k in range(1, count)
        if stats[k, 4] >= min_area
        and stats[k, 0] > 0
        and stats[k, 0] + stats[k, 2] < width
        and stats[k, 1] + stats[k, 3] < height
    ]
    return centroids[whole].reshape(-1, 2)


def vertical_edge_chains(frame: np.ndarray, last_row: int, min_length_px: int = 14) -> list[np.ndarray]:
    """Points (N, 2) along each near-vertical edge above `last_row`, one per row at the
    sub-pixel peak of the horizontal gradient: posts, poles, door frames."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    across = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3))
    along = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    left, right = np.roll(across, 1, axis=1), np.roll(across, -1, axis=1)
    edge = (across > 60) & (across > 2 * along) & (across >= left) & (across >= right)
    edge[last_row:] = False
    edge[:, [0, -1]] = False
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edge.astype(np.uint8), connectivity=8)
    chains = []
    for label in range(1, count):
        _, top, columns, rows, _ = stats[label]
        if rows < min_length_px or columns > 0.6 * rows:
            continue
        points = []
        for row in range(top, top + rows):
            hits = np.flatnonzero(labels[row] == label)
            if len(hits) != 1:
                continue
            c = hits[0]
            before, peak, after = across[row, c - 1], across[row, c], across[row, c + 1]
            curvature = before - 2 * peak + after
            points.append((c + (0.5 * (before - after) / curvature if curvature < 0 else 0.0), float(row)))
        if len(points) >= 0.8 * min_length_px:
            chains.append(np.array(points))
    return chains
