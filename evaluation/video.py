"""Drive videos: the camera view of a simulated drive with a map inset and a status line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sim.pictures import RED, to_pixels, track_map
from sim.simulation import Observation, Simulation


class DriveVideo:
    """MP4 of a drive: pass `write` as `score(..., on_step=video.write)`; `close()` at the end."""

    def __init__(self, path: str | Path, sim: Simulation, scale: int = 4, inset: int = 160) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sim = sim
        self.scale = scale
        camera = sim.camera
        self.size = (camera.width * scale, camera.height * scale)
        self._writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), round(1 / sim.dt), self.size
        )
        if not self._writer.isOpened():
            raise OSError(f"{self.path}: OpenCV cannot write an MP4 video here")
        self._map, self._world_to_map = track_map(sim.track, size=inset)  # the trail is drawn onto it
        self._last: tuple[int, int] | None = None

    def write(self, observation: Observation) -> None:
        """Add one frame: the camera view with the map inset and a status line."""
        frame = cv2.resize(observation.image, self.size, interpolation=cv2.INTER_NEAREST)
        state = observation.state
        point = tuple(to_pixels(self._world_to_map, np.array([[state.x, state.y]]))[0])
        if self._last is not None:
            cv2.line(self._map, self._last, point, RED, 1, cv2.LINE_AA)
        self._last = None if observation.intervened else point  # no line to where the car is put back
        inset = self._map.copy()
        cv2.circle(inset, point, 4, RED if observation.intervened else (255, 255, 255), -1, cv2.LINE_AA)
        height, width = inset.shape[:2]
        frame[4 : 4 + height, -4 - width : -4] = inset
        status = (
            f"lap {observation.laps}  t {observation.time_s:5.1f}s  cte {observation.cte:+.2f}m  "
            f"interventions {self.sim.interventions}"
        )
        cv2.putText(
            frame,
            status,
            (8, self.size[1] - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        self._writer.release()
        return self.path
