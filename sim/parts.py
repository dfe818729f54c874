"""The simulator as two loop parts, so the car's own loop drives it: a camera and an actuator.

Both share one `Simulation`, stepped one control period per tick (dt = 1 / loop rate), so
the simulated car moves as the real one would under the same commands whatever the
desktop's load. The camera renders the pose the actuator left; the actuator is last in
the loop, as the real one is.
"""

from __future__ import annotations

import time

import numpy as np

from sim.camera import CameraModel
from sim.simulation import Simulation
from sim.track import Track


def make_simulation(seed: int, rate_hz: float = 20.0, width: int = 160, height: int = 120) -> Simulation:
    """A simulation of the seeded track, stepped at the loop's rate, rendering width x height.

    Renders once here: the first render builds the track's textures (about a second), which
    must not happen inside a tick.
    """
    sim = Simulation(Track.from_seed(seed), camera=CameraModel(width=width, height=height), dt=1.0 / rate_hz)
    sim.render()
    return sim


class SimCamera:
    """() -> (CAMERA_IMAGE, CAMERA_TIMESTAMP): the simulated camera's view of the current pose."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def run(self) -> tuple[np.ndarray, float]:
        return self.sim.render().copy(), time.monotonic()  # the renderer reuses its buffer


class SimActuator:
    """(ANGLE, THROTTLE) -> (SIM_X, SIM_Y, SIM_YAW, SIM_SPEED, SIM_CTE): one physics step per tick.

    Keeps the last command it was given (`last_command`), as the PWM board keeps the last
    pulse; shutdown leaves it neutral.
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.last_command = (0.0, 0.0)
        self.commands = 0

    def run(self, angle: float, throttle: float) -> tuple[float, float, float, float, float]:
        observation = self.sim.step(angle, throttle, render=False)
        self.last_command = (float(angle), float(throttle))
        self.commands += 1
        state = observation.state
        return state.x, state.y, state.yaw, state.speed, observation.cte

    def shutdown(self) -> None:
        self.last_command = (0.0, 0.0)

    def status(self) -> dict:
        sim = self.sim
        return {
            "laps": sim.laps,
            "interventions": sim.interventions,
            "cte_m": round(sim.cte, 3),
            "speed_mps": round(sim.state.speed, 2),
            "progress": round(sim.progress, 3),
        }
