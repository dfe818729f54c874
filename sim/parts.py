"""The simulator as loop parts, so the car's own loop (`car.vehicle.build_car`) drives it.

- `SimCamera` renders the car's pose and says where the car was (the pose is recorded
  beside the frame, as part of the one tub schema);
- `SimActuator` steps the physics one control period per tick (dt = 1 / loop rate), so
  the simulated car moves as the real one would under the same commands whatever the
  desktop's load; it is last in the loop, as the real one is;
- the expert: `ExpertController` drives in `user` mode as a person would (`sim record`),
  `ExpertPilot` is a `FramePolicy` for the autopilot modes (`sim drive --model expert`).

All share one `Simulation`. Parts that stamp time read the loop's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from car import channels as ch
from car.clock import REAL_TIME, Clock
from car.config import CarConfig
from sim.camera import CameraModel
from sim.expert import ExpertCommand, ExpertDriver
from sim.presets import get_preset
from sim.simulation import Observation, Simulation
from sim.track import Track
from sim.vehicle import VehicleModel

POSE_FIELDS: tuple[tuple[str, str], ...] = (
    (ch.SIM_X, "float"),
    (ch.SIM_Y, "float"),
    (ch.SIM_YAW, "float"),
    (ch.SIM_SPEED, "float"),
    (ch.SIM_CTE, "float"),
    (ch.SIM_TRACK, "str"),
)
CAMERA_METADATA = ("height_m", "pitch_deg", "fov_deg", "width", "height", "forward_m", "k1", "k2")
EXPERT_OPTIONS = ("lane", "lane_offset_m", "corner_cut_m2", "min_lookahead_m")  # recorded in tubs


def make_simulation(
    seed: int,
    rate_hz: float = 20.0,
    width: int = 160,
    height: int = 120,
    *,
    preset: str = "mixed",
    config: CarConfig | None = None,
) -> Simulation:
    """A simulation of the seeded track of `preset` (its camera effects included), stepped at
    the loop's rate, rendering width x height, with the camera geometry, lens and steering
    scale of the car `config` (default: the car config's defaults, the real Donkey car's).

    Renders once here: the first render builds the track's textures (about a second), which
    must not happen inside a tick.
    """
    config = config or CarConfig()
    sim = Simulation(
        Track.from_seed(seed, preset),
        VehicleModel.from_config(config.steering),
        CameraModel.from_config(config.camera, width=width, height=height),
        dt=1.0 / rate_hz,
        effects=get_preset(preset).effects,
        seed=seed,
    )
    sim.render()
    return sim


class SimCamera:
    """() -> (CAMERA_IMAGE, CAMERA_TIMESTAMP, SIM_X, SIM_Y, SIM_YAW, SIM_SPEED, SIM_CTE, SIM_TRACK).

    The simulated camera's view of the current pose, stamped with the loop's clock, and
    that pose. `render=False` is a camera with its lens cap on (a black frame, no
    rendering cost) for policies that do not look, such as the expert.
    """

    tub_fields = POSE_FIELDS

    def __init__(self, sim: Simulation, clock: Clock = REAL_TIME, render: bool = True) -> None:
        self.sim = sim
        self.clock = clock
        self.render = render
        self._capped = np.zeros((sim.camera.height, sim.camera.width, 3), np.uint8)

    def run(self) -> tuple[Any, ...]:
        sim = self.sim
        frame = sim.render().copy() if self.render else self._capped  # the renderer reuses its buffer
        state = sim.state
        return frame, self.clock.now(), state.x, state.y, state.yaw, state.speed, sim.cte, sim.track.name

    def tub_metadata(self) -> dict[str, Any]:
        """The track and the camera, so replay and training know what the frames show."""
        sim = self.sim
        return {
            "simulated": True,
            "track": sim.track.name,
            "track_seed": sim.track.seed,
            "track_preset": sim.track.preset,
            "track_length_m": round(sim.track.length, 3),
            "track_width_m": round(sim.track.width_m, 3),
            "dt_s": sim.dt,
            "camera": {key: getattr(sim.camera, key) for key in CAMERA_METADATA},
            "steering": {
                "wheelbase_m": sim.vehicle.wheelbase_m,
                "max_wheel_angle_deg": sim.vehicle.max_steer_deg,
            },
        }


class SimActuator:
    """(ANGLE, THROTTLE) -> (): one physics step per tick; an `car.contracts.Actuator`.

    Keeps the last command it was given (`last_command`), as the PWM board keeps the last
    pulse; shutdown leaves it neutral. `steering_disturbance()` is added to the steering
    the car feels but not to the command (see `ExpertController`); `on_step` sees each
    step's `Observation` (scoring, progress bars, videos: `render_steps` renders its frame).
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        steering_disturbance: Callable[[], float] | None = None,
        on_step: Callable[[Observation], None] | None = None,
        render_steps: bool = False,
    ) -> None:
        self.sim = sim
        self.steering_disturbance = steering_disturbance
        self.on_step = on_step
        self.render_steps = render_steps
        self.last_command = (0.0, 0.0)
        self.commands = 0

    def run(self, angle: float, throttle: float) -> None:
        felt = angle if self.steering_disturbance is None else angle + self.steering_disturbance()
        observation = self.sim.step(felt, throttle, render=self.render_steps)
        self.last_command = (float(angle), float(throttle))
        self.commands += 1
        if self.on_step is not None:
            self.on_step(observation)

    def neutral(self) -> None:
        """Held until the next tick's step (the physics moves only when the loop ticks)."""
        self.last_command = (0.0, 0.0)

    def shutdown(self) -> None:
        self.neutral()

    def status(self) -> dict[str, Any]:
        sim = self.sim
        return {
            "laps": sim.laps,
            "interventions": sim.interventions,
            "cte_m": round(sim.cte, 3),
            "speed_mps": round(sim.state.speed, 2),
            "progress": round(sim.progress, 3),
        }


class SimExpert:
    """The expert driving whatever car the simulation holds now: after an intervention
    (the car was put back) it forgets where it was and starts again from there."""

    def __init__(self, sim: Simulation, **expert_options: Any) -> None:
        self.sim = sim
        self.driver = ExpertDriver(sim.track, sim.vehicle, dt=sim.dt, **expert_options)
        self._interventions = sim.interventions

    def command(self) -> ExpertCommand:
        if self.sim.interventions != self._interventions:
            self._interventions = self.sim.interventions
            self.driver.reset()
        return self.driver.command(self.sim.state)


class ExpertPilot:
    """A `FramePolicy` that ignores the frame and drives by the track: the reference every
    learnt pilot is scored against (`sim drive --model expert`). Its steering noise, if
    any, is in the command."""

    def __init__(self, sim: Simulation, **expert_options: Any) -> None:
        self.expert = SimExpert(sim, **expert_options)

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        command = self.expert.command()
        return command.applied_angle, command.throttle


class ExpertController:
    """The expert in the human's seat: (CAMERA_IMAGE, unused) -> (USER_ANGLE, USER_THROTTLE,
    USER_MODE, RECORDING, THROTTLE_CAP, CONTROLLER_TIMESTAMP), always `user` mode and
    recording, as a person driving laps to record them (`sim record`).

    Steering noise: to record recoveries the car must stray while every label stays the
    expert's clean command. So the noise is not in the command: it is a disturbance of
    the simulated car (`steering_noise`, wired as the `SimActuator`'s
    `steering_disturbance`), as a bumpy floor or a loose servo would push a real car, and
    the recorder keeps the command that corrects it. The loop itself, mixer, limiter,
    failsafe and all, is the car's, unchanged.
    """

    tub_fields: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        sim: Simulation,
        *,
        noise: float = 0.0,
        seed: int = 0,
        clock: Clock = REAL_TIME,
        **expert_options: Any,
    ) -> None:
        self.expert = SimExpert(sim, noise=noise, seed=seed, **expert_options)
        self.noise, self.seed = noise, seed
        self.clock = clock
        self._noise_now = 0.0

    def run(self, frame: np.ndarray | None = None) -> tuple[float, float, str, bool, float, float]:
        command = self.expert.command()
        self._noise_now = command.noise
        return command.angle, command.throttle, ch.MODE_USER, True, 1.0, self.clock.now()

    def steering_noise(self) -> float:
        """The offset the noise adds to the steering the car feels this tick."""
        return self._noise_now

    def tub_metadata(self) -> dict[str, Any]:
        """Who drove and how: the lane and line the labels are the expert's commands for."""
        driver = self.expert.driver
        style = {name: getattr(driver, name) for name in EXPERT_OPTIONS}
        return {
            "controller": {"kind": "sim expert", "steering_noise": self.noise, "seed": self.seed, **style}
        }
