"""The pilot arena's closed-loop run: one bundle drives the tub's recorded path (evaluation.replay).

The same replay as `tubcar replay --closed-loop` with its defaults; the run writes the
video twice, as `closed_loop.webm` (VP8: the page plays it) and `closed_loop.mp4` (what
`tubcar replay` writes, for desktop players).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from car.pilot import Pilot
from car.tub import Tub
from evaluation.error_analysis import ReplayVideo, closed_loop_caption
from evaluation.replay import (
    DEFAULT_RATE_HZ,
    ClosedLoopConfig,
    ClosedLoopStep,
    camera_for_tub,
    closed_loop,
    road_half_width_m,
    usable_records,
)
from studio.jobs import Job
from studio.models import Bundle
from studio.tubs import OpenTub

VIDEO_FILES = ("closed_loop.webm", "closed_loop.mp4")
VIDEO_SCALE = 2


def run_closed_loop(tub: OpenTub, bundle: Bundle, out: Path, job: Job) -> dict[str, Any]:
    """Drive the bundle along the tub's live records; progress is the record reached."""
    reader = Tub(tub.path)
    records = usable_records(reader)
    if len(records) < 2:
        raise ValueError(f"{tub.path}: closed-loop replay needs at least 2 usable records")
    first, last = records[0]["_index"], records[-1]["_index"]
    job.progress(0, last - first)
    out.mkdir(parents=True, exist_ok=True)
    videos = [ReplayVideo(out / name, fps=DEFAULT_RATE_HZ, scale=VIDEO_SCALE) for name in VIDEO_FILES]
    interventions = 0

    def on_step(frame, step: ClosedLoopStep) -> None:
        nonlocal interventions
        interventions += step.intervention
        job.progress(step.record_index - first, last - first)
        text = closed_loop_caption(step, interventions)
        for video in videos:
            video.add(frame, math.nan, step.angle, text, alert=step.intervention)

    try:
        result = closed_loop(
            reader,
            Pilot.load(bundle.path),
            camera_for_tub(reader),
            config=ClosedLoopConfig(road_half_width_m=road_half_width_m(reader)),
            on_step=on_step,
        )
    finally:
        for video in videos:
            video.close()
    job.progress(last - first, last - first)
    return {"model": bundle.number, "metrics": result.metrics(), "folder": str(out)}
