"""Videos of driving: one writer, one steering/throttle gauge, and the simulator's drive video.

`VideoFile` is the only place that writes video files (the replays, `tubcar movie` and the
simulator's drives all go through it). The codec follows the file's suffix, both encoders
ship in OpenCV's pip wheels: `.mp4` is MPEG-4 Part 2 ('mp4v'), fast to write, opened by
VLC, mpv and most desktop players but not by browsers; `.webm` is VP8, which every browser
plays (the studio).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from sim.pictures import RED, to_pixels, track_map
from sim.simulation import Observation, Simulation

VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP80"}
RECORDED_COLOUR = (40, 220, 40)  # what the driver (or the simulated car) did: green
MODEL_COLOUR = (230, 40, 40)  # what a model said: red
WHITE = (255, 255, 255)


class VideoFile:
    """Append RGB frames to a video file; the size is the first frame's."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix not in VIDEO_CODECS:
            raise ValueError(f"{self.path}: a video is {' or '.join(VIDEO_CODECS)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_CODECS[self.path.suffix])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write a {self.path.suffix} video here")
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path:
        if self._writer is not None:
            self._writer.release()
        return self.path


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45) -> None:
    """White text with a dark outline, readable on any background."""
    for colour, thickness in (((0, 0, 0), 3), (WHITE, 1)):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_gauge(
    image: np.ndarray, commands: Sequence[tuple[float, float, tuple[int, int, int]]], size: int = 120
) -> np.ndarray:
    """A steering bar and a throttle bar in the bottom-left corner of `image` (drawn in place).

    One marker per (angle, throttle, colour): steering from -1 (left end) to +1 (right end),
    throttle from -1 (bottom) to +1 (top). A non-finite value draws no marker.
    """
    height = image.shape[0]
    bar = max(6, size // 12)
    left, bottom = 10, height - 10
    steer_y = bottom - bar // 2  # the steering bar's centre line
    throttle_x = left + size + 2 * bar  # the throttle bar's centre line
    top = bottom - size
    cv2.rectangle(image, (left, bottom - bar), (left + size, bottom), (40, 40, 40), -1)
    cv2.rectangle(image, (throttle_x - bar // 2, top), (throttle_x + bar // 2, bottom), (40, 40, 40), -1)
    cv2.line(image, (left + size // 2, bottom - bar - 2), (left + size // 2, bottom + 2), WHITE, 1)
    cv2.line(image, (throttle_x - bar, top + size // 2), (throttle_x + bar, top + size // 2), WHITE, 1)
    reach = bar // 2 + 2  # a marker sticks out of its bar by 2 px on each side
    for angle, throttle, colour in commands:
        if np.isfinite(angle):
            x = round(left + (np.clip(angle, -1.0, 1.0) + 1.0) / 2.0 * size)
            cv2.rectangle(image, (x - 2, steer_y - reach), (x + 2, steer_y + reach), colour, -1)
        if np.isfinite(throttle):
            y = round(top + (1.0 - np.clip(throttle, -1.0, 1.0)) / 2.0 * size)
            cv2.rectangle(image, (throttle_x - reach, y - 2), (throttle_x + reach, y + 2), colour, -1)
    put_text(image, "steering", (left, bottom - bar - 6), 0.4)
    put_text(image, "throttle", (throttle_x - 24, top - 6), 0.4)
    return image


class DriveVideo:
    """MP4 of a simulated drive: pass `write` as `score(..., on_step=video.write)`; `close()` at the end.

    Each frame: the camera view, a map inset with the car's trail, the lap (from 1) and
    time, cross-track error and interventions, and a gauge of the steering and throttle
    the car drove with.
    """

    def __init__(
        self, path: str | Path, sim: Simulation, laps: int | None = None, scale: int = 4, inset: int = 160
    ) -> None:
        self.sim = sim
        self.laps = laps
        self.scale = scale
        self.size = (sim.camera.width * scale, sim.camera.height * scale)
        self._file = VideoFile(path, round(1 / sim.dt))
        self._map, self._world_to_map = track_map(sim.track, size=inset)  # the trail is drawn onto it
        self._last: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        return self._file.path

    def write(self, observation: Observation) -> None:
        """Add one frame: the camera view with the map inset, a status line and the gauge."""
        if observation.image is None:
            raise ValueError("SimVideo.write needs a rendered observation (the step rendered no image)")
        frame = cv2.resize(observation.image, self.size, interpolation=cv2.INTER_NEAREST)
        state = observation.state
        point = tuple(to_pixels(self._world_to_map, np.array([[state.x, state.y]]))[0])
        if self._last is not None:
            cv2.line(self._map, self._last, point, RED, 1, cv2.LINE_AA)
        self._last = None if observation.intervened else point  # no line to where the car is put back
        inset = self._map.copy()
        cv2.circle(inset, point, 4, RED if observation.intervened else WHITE, -1, cv2.LINE_AA)
        height, width = inset.shape[:2]
        frame[4 : 4 + height, -4 - width : -4] = inset
        put_text(frame, self.lap_text(observation.laps), (8, 20), 0.55)
        put_text(
            frame,
            f"t {observation.time_s:5.1f}s  cte {observation.cte:+.2f}m  "
            f"interventions {self.sim.interventions}",
            (8, 42),
        )
        draw_gauge(frame, [(observation.angle, observation.throttle, RECORDED_COLOUR)])
        self._file.write(frame)

    def lap_text(self, laps_done: int) -> str:
        """`lap 2/3`: the lap being driven, counted from 1 (the last one stays on after the line)."""
        if self.laps is None:
            return f"lap {laps_done + 1}"
        return f"lap {min(laps_done + 1, self.laps)}/{self.laps}"

    def close(self) -> Path:
        return self._file.close()
