"""Closed-loop scoring: let a pilot drive laps and measure how well it drove.

The pilot is a `car.contracts.FramePolicy` (`run(frame) -> (angle, throttle)`): a TFLite
`car.pilot.Pilot`, a reference pilot, or the simulator's expert (`expert_pilot`). It
drives the car of `car.vehicle.build_car` (the simulator's camera and actuator, a
scripted controller holding the autopilot mode, and the car's own mixer, throttle
limiter and failsafe) on a stepped clock, so a score is repeatable tick for tick and
runs as fast as the CPU allows. The throttle is left to the simulated vehicle
(`sim.car.simulator_config`).

The score follows the PilotNet paper's autonomy metric, where every intervention costs 6
seconds of a human's attention: autonomy = 1 - 6 * interventions / elapsed seconds,
clipped at 0. Two things need a person: the car leaving the road (the simulator puts it
back), and the car standing still, i.e. moving less than STALL_DISTANCE_M along the
track in STALL_S seconds (a stall: counted once per STALL_S it lasts), so a model that
never drives cannot score well.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from car import channels as ch
from car.clock import SteppedClock
from car.contracts import FramePolicy
from car.controller.scripted import Command, ScriptedController
from car.vehicle import build_car
from sim.car import simulator_config
from sim.parts import ExpertPilot, SimActuator, SimCamera
from sim.simulation import Observation, Simulation

INTERVENTION_COST_S = 6.0
SLOWEST_LAP_SPEED_MPS = 0.25  # the default time limit allows laps at this mean speed
STALL_S = INTERVENTION_COST_S
STALL_DISTANCE_M = 0.2


@dataclass(frozen=True)
class _FunctionPolicy:
    run: Callable[[np.ndarray], tuple[float, float]]


def camera_pilot(run: Callable[[np.ndarray], tuple[float, float]]) -> FramePolicy:
    """A bare function `frame -> (angle, throttle)` as a FramePolicy (a pilot object, e.g. a
    `car.pilot.Pilot`, is one already)."""
    return _FunctionPolicy(run)


def expert_pilot(sim: Simulation, **expert_options: Any) -> FramePolicy:
    """The expert driver on the simulation's track as a FramePolicy (noise-free by default)."""
    return ExpertPilot(sim, **expert_options)


def autonomy(interventions: int, elapsed_s: float) -> float:
    """PilotNet autonomy: 1 - interventions * 6 s / elapsed s, clipped to [0, 1]."""
    if elapsed_s <= 0:
        return 1.0 if interventions == 0 else 0.0
    return max(0.0, 1.0 - interventions * INTERVENTION_COST_S / elapsed_s)


class _Tally:
    """What the score counts, step by step (the simulated actuator's `on_step`)."""

    def __init__(self, sim: Simulation, on_step: Callable[[Observation], None] | None) -> None:
        self.sim = sim
        self.on_step = on_step
        self.steps, self.stalls = 0, 0
        self.abs_cte_sum, self.max_cte = 0.0, 0.0
        self._stall_check_s, self._stall_check_distance = 0.0, 0.0

    def step(self, observation: Observation) -> None:
        sim = self.sim
        self.steps += 1
        self.abs_cte_sum += abs(observation.cte)  # where it went, before any putting back
        self.max_cte = max(self.max_cte, abs(observation.cte))
        if self.on_step is not None:
            self.on_step(observation)
        if observation.intervened:  # the pilot goes on from where the car was put back
            self._stall_check_s, self._stall_check_distance = sim.time_s, sim.distance_m
        elif sim.time_s - self._stall_check_s >= STALL_S - 1e-9:
            self.stalls += abs(sim.distance_m - self._stall_check_distance) < STALL_DISTANCE_M
            self._stall_check_s, self._stall_check_distance = sim.time_s, sim.distance_m


def score(
    policy: FramePolicy,
    sim: Simulation,
    laps: int = 1,
    *,
    time_limit_s: float | None = None,
    throttle: float | None = None,
    on_step: Callable[[Observation], None] | None = None,
    render: bool = True,
) -> dict[str, Any]:
    """Drive `laps` laps from the start line (or until `time_limit_s` of simulated time)
    and return the score as a JSON-ready dict.

    `throttle` replaces the pilot's throttle with a constant (steering-only models: the
    controller holds `local_angle` mode with that throttle); `on_step` sees every step's
    observation (video, progress bars); `render=False` caps the camera for pilots that do
    not look (the expert), which is faster.
    """
    if laps < 1:
        raise ValueError(f"laps must be >= 1, got {laps}")
    limit_s = 30.0 + laps * sim.track.length / SLOWEST_LAP_SPEED_MPS if time_limit_s is None else time_limit_s
    sim.reset(render=render)  # the first frame builds the textures: before the clock starts
    tally = _Tally(sim, on_step)
    clock = SteppedClock()
    if throttle is None:
        command = Command(mode=ch.MODE_LOCAL)
    else:
        command = Command(mode=ch.MODE_LOCAL_ANGLE, throttle=throttle)
    car = build_car(
        simulator_config(sim),
        camera=SimCamera(sim, clock, render=render),
        controller=ScriptedController(command, clock=clock),
        pilot=policy,
        actuator=SimActuator(sim, on_step=tally.step, render_steps=render and on_step is not None),
        clock=clock,
    )
    started = time.perf_counter()
    car.loop.run(until=lambda: sim.laps >= laps or sim.time_s >= limit_s)
    wall_s = time.perf_counter() - started
    lap_times = [round(t, 3) for t in sim.lap_times]
    steps, interventions = tally.steps, sim.interventions + tally.stalls
    return {
        "track": sim.track.name,
        "track_length_m": round(sim.track.length, 2),
        "laps": sim.laps,
        "laps_requested": laps,
        "completed": sim.laps >= laps,
        "lap_times_s": lap_times,
        "mean_lap_time_s": round(float(np.mean(lap_times)), 3) if lap_times else None,
        "elapsed_s": round(sim.time_s, 3),
        "interventions": interventions,
        "off_road": sim.interventions,
        "stalls": tally.stalls,
        "autonomy": round(autonomy(interventions, sim.time_s), 5),
        "mean_cte": round(tally.abs_cte_sum / steps, 4) if steps else 0.0,
        "max_cte": round(tally.max_cte, 4),
        "mean_speed_mps": round(sim.distance_m / sim.time_s, 3) if sim.time_s > 0 else 0.0,
        "frames": steps,
        "frames_per_s": round(steps / wall_s, 1) if wall_s > 0 else math.inf,
    }
