"""A tub as a movie (Donkeycar's `makemovie`): every frame with what the driver did and,
given a model, what the model would have done, on a steering/throttle gauge.

Green is the recorded command (`user/angle`, `user/throttle`), red the model's; the
steering is also drawn as a line from the bottom of the frame. The movie plays at the
rate the tub was recorded (its timestamps, else the loop's 20 Hz).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.contracts import FramePolicy
from car.tub import Tub, TubError, TubRecordError
from evaluation.error_analysis import ReplayVideo
from evaluation.path import frame_interval_s
from evaluation.video import MODEL_COLOUR, RECORDED_COLOUR


@dataclass
class Movie:
    """What `make_movie` wrote."""

    path: Path
    frames: int
    fps: float
    skipped: list[str]  # records left out, each with the reason


def make_movie(
    tub: Tub,
    out: str | Path,
    pilot: FramePolicy | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    scale: int = 3,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> Movie:
    """Write the tub's frames (those `keep` selects) into `out` (.mp4 or .webm)."""
    records = [record for record in tub.records() if keep is None or keep(record)]
    if not records:
        raise TubError(f"{tub.path}: no readable records to make a movie of")
    fps = 1.0 / frame_interval_s(records)
    skipped = [str(problem) for problem in tub.problems]
    with ReplayVideo(out, fps=fps, scale=scale) as video:
        for record in progress(records):
            try:
                frame = tub.load_image(record, CAMERA_IMAGE)
            except TubRecordError as err:
                skipped.append(f"record {record['_index']}: {err}")
                continue
            angle, throttle = _label(record, USER_ANGLE), _label(record, USER_THROTTLE)
            gauge = [(angle, throttle, RECORDED_COLOUR)]
            text = [f"#{record['_index']}  {record.get(USER_MODE, '')}"]
            text.append(f"driver {angle:+.2f} {throttle:+.2f}")
            predicted = math.nan
            if pilot is not None:
                predicted, model_throttle = pilot.run(frame)
                gauge.append((predicted, model_throttle, MODEL_COLOUR))
                text.append(f"model  {predicted:+.2f} {model_throttle:+.2f}")
            video.add(frame, angle, predicted, text, gauge=gauge)
    return Movie(video.path, video.frames, fps, skipped)


def _label(record: dict[str, Any], key: str) -> float:
    """A recorded command, NaN when the record has none (the gauge then shows no marker)."""
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) else math.nan
