"""One simulated car on one track: physics, camera, position on the track, laps, resets.

`Simulation.step(angle, throttle)` advances the car by one control period (default 1/20 s,
the drive loop's rate) and returns an `Observation`: the camera frame and where the car
is. When the car leaves the road (|CTE| beyond half the road width plus a margin) that is
an intervention, as when a person picks the real car up: it is counted and the car is put
back on the centre line at the nearest point, facing along the track, stopped; the clock
runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sim.camera import CameraModel
from sim.effects import ImageEffects
from sim.render import Renderer
from sim.track import Track
from sim.vehicle import VehicleModel, VehicleState

DEFAULT_DT = 1.0 / 20.0


@dataclass(frozen=True)
class Observation:
    """The simulation after a step. `image` is None when the step was not rendered."""

    image: np.ndarray | None  # (height, width, 3) RGB uint8, reused by the next render
    state: VehicleState
    cte: float  # metres, + = left of the centre line (before any reset of this step)
    s: float  # arc length from the start line, metres, in [0, track length)
    progress: float  # laps driven as a real number (negative when driving backwards)
    laps: int  # laps completed
    time_s: float
    intervened: bool  # the car left the road in this step and was put back
    angle: float = 0.0  # the steering this step drove with, as the car felt it (0 after a reset)
    throttle: float = 0.0  # the throttle this step drove with


OFF_TRACK_MARGIN_M = 0.1  # the car has left the road when |CTE| > half the width + this


class Simulation:
    """Track + vehicle + camera, stepped at a fixed period."""

    def __init__(
        self,
        track: Track,
        vehicle: VehicleModel = VehicleModel(),
        camera: CameraModel = CameraModel(),
        *,
        dt: float = DEFAULT_DT,
        effects: ImageEffects = ImageEffects(),
        off_track_margin_m: float = OFF_TRACK_MARGIN_M,
        px_per_m: float = 100.0,
        seed: int = 0,
    ) -> None:
        if dt <= 0:
            raise ValueError(f"simulation dt must be positive, got {dt}")
        self.track = track
        self.vehicle = vehicle
        self.camera = camera
        self.dt = dt
        self.effects = effects
        self.off_track_limit_m = track.width_m / 2.0 + off_track_margin_m
        self._px_per_m, self._render_seed = px_per_m, seed
        self._renderer: Renderer | None = None
        self._frame: np.ndarray | None = None
        self._frame_state: VehicleState | None = None  # the pose `_frame` shows
        self.reset(render=False)

    @property
    def renderer(self) -> Renderer:
        """The camera renderer, built (textures and all, ~1 s) on the first frame asked for."""
        if self._renderer is None:
            self._renderer = Renderer(
                self.track, self.camera, px_per_m=self._px_per_m, effects=self.effects, seed=self._render_seed
            )
        return self._renderer

    def reset(self, s: float = 0.0, render: bool = True) -> Observation:
        """Stop the car on the centre line at arc length `s`, facing along the track;
        clears the clock, laps and interventions. Returns the first observation."""
        x, y, heading = self.track.pose_at(s)
        self.state = VehicleState(x, y, heading, 0.0)
        self.time_s = 0.0
        self.interventions = 0
        self.lap_times: list[float] = []  # duration of each completed lap, seconds
        self._hint = self.track.index_at(s)
        self._s = s % self.track.length
        self._distance = 0.0  # signed distance driven along the centre line
        self._lap_started = 0.0
        self._cte = 0.0
        return self._observation(render=render, intervened=False)

    @property
    def laps(self) -> int:
        """Laps completed (a lap counts once the car has driven the whole line forwards)."""
        return len(self.lap_times)

    @property
    def progress(self) -> float:
        """Laps driven as a real number."""
        return self._distance / self.track.length

    @property
    def distance_m(self) -> float:
        """Metres driven along the centre line (negative when driving backwards)."""
        return self._distance

    @property
    def cte(self) -> float:
        return self._cte

    def render(self) -> np.ndarray:
        """The camera frame from the current pose (RGB uint8, reused by the next render).

        One picture per pose: asked again before the car moves (a drive video and the
        loop's camera both look after a step), it is the same frame, noise and all.
        """
        if self._frame is None or self._frame_state is not self.state:
            self._frame, self._frame_state = self.renderer.render(self.state), self.state
        return self._frame

    def step(self, angle: float, throttle: float, render: bool = True) -> Observation:
        """Drive one period with the commands (each in [-1, 1], angle + = right)."""
        self.state = self.vehicle.step(self.state, angle, throttle, self.dt)
        self.time_s += self.dt
        where = self.track.locate(self.state.x, self.state.y, self._hint)
        self._hint = where.index
        half = self.track.length / 2.0
        self._distance += (where.s - self._s + half) % self.track.length - half
        self._s = where.s
        self._cte = where.cte
        while self._distance >= (self.laps + 1) * self.track.length:
            self.lap_times.append(self.time_s - self._lap_started)
            self._lap_started = self.time_s
        intervened = abs(where.cte) > self.off_track_limit_m
        observation = self._observation(render=render, intervened=intervened, command=(angle, throttle))
        if intervened:
            self.interventions += 1
            x, y, heading = self.track.pose_at(where.s)
            self.state = replace(self.state, x=x, y=y, yaw=heading, speed=0.0)
            self._cte = 0.0
        return observation

    def observe(self, render: bool = True) -> Observation:
        """The frame and position where the car is now, e.g. where an intervention put it."""
        return self._observation(render=render, intervened=False)

    def _observation(
        self, render: bool, intervened: bool, command: tuple[float, float] = (0.0, 0.0)
    ) -> Observation:
        return Observation(
            image=self.render() if render else None,
            state=self.state,
            cte=self._cte,
            s=self._s,
            progress=self.progress,
            laps=self.laps,
            time_s=self.time_s,
            intervened=intervened,
            angle=float(command[0]),
            throttle=float(command[1]),
        )
