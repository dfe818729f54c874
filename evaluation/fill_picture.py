"""A picture of what closed-loop replay shows a pilot off the recorded path, fill by fill.

One recorded frame warped to a few poses the pilot might reach (moved sideways, turned),
each with the three fills of `evaluation.warp`: "black" (what the recorded frame alone
shows: the wedges it never saw are black), "edge" (those filled smoothly from the nearest
seen pixels) and "neighbours" (filled first from the neighbouring recorded frames, which
saw them a moment earlier or later). Written by `tubcar replay --closed-loop --fill-picture`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from evaluation.odometry import compose
from evaluation.replay import ClosedLoopConfig, ReplayTrack
from evaluation.warp import warper
from sim.camera import CameraModel

# (forward m, left m, heading deg) of the new pose from the recorded one.
OFFSETS = ((0.0, 0.15, 0.0), (0.0, 0.0, 15.0), (0.0, -0.2, -10.0))
FILL_ORDER = ("black", "edge", "neighbours")
_SCALE, _LABEL_PX = 2, 22


def fill_picture(
    track: ReplayTrack,
    camera: CameraModel,
    out: Path,
    position: int | None = None,
    offsets: Sequence[tuple[float, float, float]] = OFFSETS,
    neighbours: Sequence[int] = ClosedLoopConfig.neighbours,
) -> Path:
    """Writes the grid (one row per offset, one column per fill) as a PNG at `out`."""
    path = track.path
    index = len(path) // 2 if position is None else position
    nearby = [k for k in (index, *(index + n for n in neighbours)) if 0 <= k < len(path)]
    frames = {k: track.tub.load_image(track.records[path.positions[k]]) for k in nearby}
    warp, rows = warper(camera), []
    for forward, left, heading_deg in offsets:
        x, y, yaw = compose(path.poses[index], (forward, left, math.radians(heading_deg)))
        sources = [(frames[k], path.relative(k, x, y, yaw)) for k in nearby]
        label = f"{left:+.2f} m left, {heading_deg:+.0f} deg"
        rows.append(
            np.hstack([_tile(warp.view(sources, fill=fill), f"{label}: {fill}") for fill in FILL_ORDER])
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return out


def _tile(frame: np.ndarray, label: str) -> np.ndarray:
    """The frame enlarged with its label in a strip above it (RGB)."""
    image = cv2.resize(frame, None, fx=_SCALE, fy=_SCALE, interpolation=cv2.INTER_NEAREST)
    strip = np.full((_LABEL_PX, image.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, label, (4, _LABEL_PX - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, image])
