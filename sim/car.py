"""The car of `car.vehicle.build_car` on the simulator: its camera and actuator are simulated,
everything else (controller, pilot, mixer, throttle limiter, failsafe, recorder) is the car's.

    config = load_config("car.toml")
    sim = make_simulation(3, config=config, preset="warehouse")  # its camera and steering: the config's
    car = simulated_car(config, sim, model_dir="models/fast")  # the web page drives
    car.start(); car.loop.run()

Scoring (`evaluation.scoring`) and recording (`sim.recording`) build theirs the same way
on a stepped clock, with `simulator_config(sim)`.
"""

from __future__ import annotations

import math
from pathlib import Path

from car.clock import REAL_TIME, Clock
from car.config import CarConfig
from car.contracts import Part
from car.vehicle import Car, build_car
from sim.parts import SimActuator, SimCamera
from sim.simulation import Simulation


def simulator_config(sim: Simulation) -> CarConfig:
    """The config of the simulator's own drives (scoring, recording): the loop at the
    simulation's rate, its camera (size, mounting, lens) and steering scale, the car's
    failsafes but the frozen-camera one (see `simulated_car`), and the throttle left to the
    simulated vehicle (no cap, limits or ramp: its motor model has its own lag, and the
    simulator's scores and tubs have always been made without them)."""
    config = CarConfig()
    config.name = "sim"
    config.loop.rate_hz = 1.0 / sim.dt
    for name in ("width", "height", "height_m", "pitch_deg", "fov_deg", "forward_m", "k1", "k2"):
        setattr(config.camera, name, getattr(sim.camera, name))
    config.steering.wheelbase_m = sim.vehicle.wheelbase_m
    config.steering.max_wheel_angle_deg = sim.vehicle.max_steer_deg
    config.throttle.max_forward = config.throttle.max_reverse = 1.0
    config.throttle.ramp_per_s = math.inf
    config.pilot.throttle_cap = 1.0
    config.failsafe.frozen_frames = 0
    return config


def simulated_car(
    config: CarConfig,
    sim: Simulation,
    *,
    controller: Part | None = None,
    model_dir: str | Path | None = None,
    clock: Clock = REAL_TIME,
) -> Car:
    """`build_car` with the simulator's camera and actuator; the rest as `config` says.

    The simulation must step at the loop's period and render the config's camera size.
    The frozen-camera failsafe is off: the simulator renders a car standing still (or
    a camera with its lens cap on) as the same picture every tick, as a real sensor never does.
    """
    if not math.isclose(config.loop.rate_hz * sim.dt, 1.0):
        raise ValueError(
            f"the simulation steps {sim.dt:g} s but the loop runs at {config.loop.rate_hz:g} Hz: "
            "make them agree (make_simulation(seed, rate_hz=...))"
        )
    size = (sim.camera.width, sim.camera.height)
    if size != (config.camera.width, config.camera.height):
        raise ValueError(
            f"the simulated camera renders {size[0]}x{size[1]} but camera.width/height are "
            f"{config.camera.width}x{config.camera.height}"
        )
    config = config.model_copy(deep=True)
    config.failsafe.frozen_frames = 0
    return build_car(
        config,
        model_dir=model_dir,
        camera=SimCamera(sim, clock),
        controller=controller,
        actuator=SimActuator(sim),
        clock=clock,
    )
