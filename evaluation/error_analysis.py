"""Why a model fails: errors grouped by driving situation, and the worst frames to look at.

The recipe of error analysis: take the frames the model gets most wrong, sort them into
situations, and see which situation carries most of the error; that is where more data,
augmentation or capacity pays off first. Situations come from the recorded labels (a
steering command beyond `curve_threshold` is a curve) and, in simulator tubs, from the
recorded cross-track error (a car far off the centre line is recovering, which is what
the expert's injected noise was for).

Outputs are PNGs: predicted vs recorded over time, and a gallery of the worst frames by
situation with each frame's label and prediction drawn on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from car.channels import SIM_CTE

CURVE_THRESHOLD = 0.15  # |steering command| above this: the car is in a curve
OFF_CENTRE_M = 0.15  # |sim cross-track error| above this: the car is recovering
SITUATIONS = ("straight", "curve left", "curve right", "off-centre left", "off-centre right")


def situation(
    angle: float,
    cte: float | None = None,
    curve_threshold: float = CURVE_THRESHOLD,
    off_centre_m: float = OFF_CENTRE_M,
) -> str:
    """The driving situation of one frame (steering + is RIGHT; cte + is LEFT of centre)."""
    if cte is not None and abs(cte) > off_centre_m:
        return "off-centre left" if cte > 0 else "off-centre right"
    if angle < -curve_threshold:
        return "curve left"
    if angle > curve_threshold:
        return "curve right"
    return "straight"


def situations(
    records: Sequence[dict[str, Any]],
    recorded_angles: np.ndarray,
    curve_threshold: float = CURVE_THRESHOLD,
    off_centre_m: float = OFF_CENTRE_M,
) -> list[str]:
    """The situation of every frame; uses the recorded CTE when the tub has it."""
    return [
        situation(float(angle), record.get(SIM_CTE), curve_threshold, off_centre_m)
        for record, angle in zip(records, recorded_angles)
    ]


@dataclass(frozen=True)
class GroupError:
    """How one group of frames (a situation, a tag) contributes to the steering error."""

    name: str
    frames: int
    frame_share: float  # fraction of all frames
    steering_mse: float
    error_share: float  # fraction of the total squared steering error

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def error_by_groups(
    masks: Mapping[str, np.ndarray], recorded: np.ndarray, predicted: np.ndarray
) -> list[GroupError]:
    """Per group with frames: frames, MSE and share of the total squared error, biggest share first.

    masks: group name -> (N,) bool, which frames belong to it (groups may overlap).
    """
    squared = (predicted[:, 0] - recorded[:, 0]) ** 2  # (N,)
    total = float(squared.sum()) or 1.0
    groups = [
        GroupError(
            name,
            int(mask.sum()),
            float(mask.mean()),
            float(squared[mask].mean()),
            float(squared[mask].sum() / total),
        )
        for name, mask in masks.items()
        if mask.any()
    ]
    return sorted(groups, key=lambda g: g.error_share, reverse=True)


def error_by_situation(
    labels: Sequence[str], recorded: np.ndarray, predicted: np.ndarray
) -> list[GroupError]:
    """Per situation: frames, MSE and share of the total squared error, biggest share first."""
    names = np.asarray(labels)
    return error_by_groups({name: names == name for name in SITUATIONS}, recorded, predicted)


def worst_by_situation(
    labels: Sequence[str], recorded: np.ndarray, predicted: np.ndarray, per_situation: int, spacing: int = 10
) -> dict[str, np.ndarray]:
    """Per situation, positions of its `per_situation` largest absolute steering errors, worst first.

    Frames closer than `spacing` positions to a frame already picked are skipped: the
    neighbours of a bad frame are nearly the same picture and would fill the gallery.
    """
    error = np.abs(predicted[:, 0] - recorded[:, 0])  # (N,)
    names = np.asarray(labels)
    worst = {}
    for name in SITUATIONS:
        picked: list[int] = []
        for position in np.flatnonzero(names == name)[np.argsort(-error[names == name], kind="stable")]:
            if all(abs(position - other) >= spacing for other in picked):
                picked.append(int(position))
            if len(picked) == per_situation:
                break
        if picked:
            worst[name] = np.array(picked)
    return worst


def plot_timeline(
    recorded: np.ndarray,
    predicted: np.ndarray,
    path: str | Path,
    title: str = "",
    seconds_per_frame: float | None = None,
) -> Path:
    """PNG: recorded vs predicted steering and throttle over the replay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(recorded)) * (seconds_per_frame or 1.0)
    fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    for axis, column, name in zip(axes, (0, 1), ("steering", "throttle")):
        axis.plot(x, recorded[:, column], color="tab:green", lw=1.2, label=f"recorded {name}")
        axis.plot(x, predicted[:, column], color="tab:red", lw=1.0, alpha=0.85, label=f"predicted {name}")
        mse = float(np.mean((predicted[:, column] - recorded[:, column]) ** 2))
        axis.set_ylabel(name)
        axis.set_title(
            f"{name}: MSE {mse:.4f}, predict-the-mean MSE {float(np.var(recorded[:, column])):.4f}",
            fontsize=9,
            loc="left",
        )
        axis.legend(loc="upper right", fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds" if seconds_per_frame else "frame")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_gallery(
    frames: Mapping[str, Sequence[np.ndarray]],
    recorded: np.ndarray,
    predicted: np.ndarray,
    worst: dict[str, np.ndarray],
    indexes: Sequence[int],
    groups: Sequence[GroupError],
    path: str | Path,
    title: str = "",
) -> Path:
    """PNG: error share by situation, then one row per situation of its worst frames.

    worst: situation -> positions (from `worst_by_situation`); frames: situation -> their
    RGB uint8 (H, W, 3) images; recorded/predicted: (N, 2) of all frames; indexes: (N,)
    record indexes. Situations are ordered by their share of the error, biggest first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [g.name for g in groups if g.name in worst]
    per_row = max(len(positions) for positions in worst.values())
    fig = plt.figure(figsize=(2.2 * max(per_row, 4), 2.4 + 2.0 * len(order)))
    grid = fig.add_gridspec(len(order) + 1, max(per_row, 4), height_ratios=[1.3] + [1.0] * len(order))
    _plot_shares(fig.add_subplot(grid[0, :]), groups)
    for row, name in enumerate(order):
        for column, (k, frame) in enumerate(zip(worst[name], frames[name])):
            axis = fig.add_subplot(grid[row + 1, column])
            axis.imshow(draw_steering(frame, recorded[k, 0], predicted[k, 0]))
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"#{indexes[k]} rec {recorded[k, 0]:+.2f} pred {predicted[k, 0]:+.2f}", fontsize=7)
            if column == 0:
                axis.set_ylabel(name, fontsize=9)
    fig.suptitle(f"{title}\nlines: recorded steering (green), predicted (red)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _plot_shares(axis, groups: Sequence[GroupError]) -> None:
    names = [g.name for g in groups]
    positions = np.arange(len(groups))
    axis.barh(
        positions - 0.2,
        [g.frame_share for g in groups],
        height=0.4,
        color="tab:gray",
        label="share of frames",
    )
    axis.barh(
        positions + 0.2,
        [g.error_share for g in groups],
        height=0.4,
        color="tab:red",
        label="share of squared steering error",
    )
    for position, group in zip(positions, groups):
        axis.text(
            group.error_share + 0.01, position + 0.2, f"MSE {group.steering_mse:.3f}", va="center", fontsize=7
        )
    axis.set_yticks(positions, names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 1.15)
    axis.legend(fontsize=7, loc="lower right")
    axis.set_title("which situation carries the steering error", fontsize=9, loc="left")


def draw_steering(
    frame: np.ndarray, recorded: float, predicted: float, scale: int = 3, text: Sequence[str] = ()
) -> np.ndarray:
    """The frame enlarged, with recorded (green) and predicted (red) steering as lines,
    and the `text` lines in a black strip below it (drawn once, off the picture: text
    over a busy frame is unreadable at 160x120, however it is outlined).

    Each line leaves the bottom centre tilted by the command (+1 = full right = 45 degrees).
    """
    import cv2

    image = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    height, width = image.shape[:2]
    base = (width // 2, height - 1)
    length = 0.45 * height
    for value, colour in ((recorded, (40, 220, 40)), (predicted, (230, 40, 40))):
        if not np.isfinite(value):
            continue
        theta = np.clip(value, -1.0, 1.0) * np.pi / 4
        tip = (int(base[0] + length * np.sin(theta)), int(base[1] - length * np.cos(theta)))
        cv2.line(image, base, tip, colour, max(2, scale), cv2.LINE_AA)
    if not text:
        return image
    line_px, font = int(round(11 * scale)), 0.22 * scale
    strip = np.zeros((line_px * len(text) + scale * 2, width, 3), dtype=np.uint8)
    for row, line in enumerate(text):
        origin = (2 * scale, line_px * (row + 1) - 2 * scale + scale)
        cv2.putText(strip, line, origin, cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([image, strip])


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class ReplayVideo:
    """Video of a replay: each frame enlarged, steering lines, a caption and optionally a
    steering/throttle gauge drawn on it; `.mp4` or `.webm` (see `evaluation.video.VideoFile`)."""

    def __init__(self, path: str | Path, fps: float, scale: int = 3) -> None:
        from evaluation.video import VideoFile

        self._file = VideoFile(path, fps)
        self.path, self.fps, self.scale = self._file.path, fps, scale

    @property
    def frames(self) -> int:
        return self._file.frames

    def add(
        self,
        frame: np.ndarray,
        recorded: float,
        predicted: float,
        text: Sequence[str] = (),
        alert: bool = False,
        gauge: Sequence[tuple[float, float, tuple[int, int, int]]] = (),
    ) -> None:
        """Append one RGB frame; `alert` draws a red border (e.g. an intervention); `gauge`
        lists (angle, throttle, colour) markers for `evaluation.video.draw_gauge`."""
        import cv2

        from evaluation.video import draw_gauge

        image = draw_steering(frame, recorded, predicted, self.scale, text)
        if alert:
            cv2.rectangle(image, (0, 0), (image.shape[1] - 1, image.shape[0] - 1), (255, 0, 0), 6)
        if gauge:
            draw_gauge(image, gauge, size=min(120, image.shape[1] // 3))
        self._file.write(image)

    def close(self) -> Path:
        return self._file.close()

    def __enter__(self) -> ReplayVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_loop_caption(step: Any, interventions: int) -> list[str]:
    """The lines written on a closed-loop video frame (`step`: an evaluation.replay.ClosedLoopStep)."""
    return [
        f"t {step.time_s:5.1f}s  record #{step.record_index}",
        f"offset {step.lateral_m:+.2f} m  heading {math.degrees(step.heading_rad):+.1f} deg",
        f"interventions {interventions}",
    ]
