"""Closed-loop scoring: let a pilot drive laps and measure how well it drove.

A pilot is any callable `Observation -> (angle, throttle)`; `camera_pilot` adapts one that
only sees the camera frame (a TFLite `Pilot.run`), `expert_pilot` drives by the track's
geometry. The score follows the PilotNet paper's autonomy metric, where every
intervention costs 6 seconds of a human's attention: autonomy = 1 - 6 * interventions /
elapsed seconds, clipped at 0. Two things need a person: the car leaving the road (the
simulator puts it back), and the car standing still, i.e. moving less than
STALL_DISTANCE_M along the track in STALL_S seconds (a stall: counted once per STALL_S
it lasts), so a model that never drives cannot score well.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from sim.expert import ExpertDriver
from sim.simulation import Observation, Simulation

Pilot = Callable[[Observation], tuple[float, float]]
INTERVENTION_COST_S = 6.0
SLOWEST_LAP_SPEED_MPS = 0.25  # the default time limit allows laps at this mean speed
STALL_S = INTERVENTION_COST_S
STALL_DISTANCE_M = 0.2


def camera_pilot(run: Callable[[np.ndarray], tuple[float, float]]) -> Pilot:
    """Adapt `run(frame) -> (angle, throttle)`, e.g. `car.pilot.Pilot.run`, to a Pilot."""

    def drive(observation: Observation) -> tuple[float, float]:
        return run(observation.image)

    return drive


def expert_pilot(sim: Simulation, **expert_options: Any) -> Pilot:
    """The expert driver on the simulation's track as a Pilot (noise-free by default)."""
    expert = ExpertDriver(sim.track, sim.vehicle, dt=sim.dt, **expert_options)

    def drive(observation: Observation) -> tuple[float, float]:
        if observation.intervened:
            expert.reset()
        command = expert.command(sim.state)
        return command.applied_angle, command.throttle

    return drive


def autonomy(interventions: int, elapsed_s: float) -> float:
    """PilotNet autonomy: 1 - interventions * 6 s / elapsed s, clipped to [0, 1]."""
    if elapsed_s <= 0:
        return 1.0 if interventions == 0 else 0.0
    return max(0.0, 1.0 - interventions * INTERVENTION_COST_S / elapsed_s)


def score(
    pilot: Pilot,
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

    `throttle` replaces the pilot's throttle with a constant (steering-only models);
    `on_step` sees every observation (video, progress bars); `render=False` skips the
    camera for pilots that do not look (the expert), which is faster.
    """
    if laps < 1:
        raise ValueError(f"laps must be >= 1, got {laps}")
    if time_limit_s is None:
        time_limit_s = 30.0 + laps * sim.track.length / SLOWEST_LAP_SPEED_MPS
    observation = sim.reset(render=render)
    abs_cte_sum, max_cte, steps, stalls = 0.0, 0.0, 0, 0
    stall_check_s, stall_check_distance = 0.0, 0.0
    started = time.perf_counter()
    while sim.laps < laps and sim.time_s < time_limit_s:
        angle, pilot_throttle = pilot(observation)
        observation = sim.step(angle, pilot_throttle if throttle is None else throttle, render=render)
        steps += 1
        abs_cte_sum += abs(observation.cte)
        max_cte = max(max_cte, abs(observation.cte))
        if on_step is not None:
            on_step(observation)
        if observation.intervened:  # the pilot goes on from where the car was put back
            observation = replace(sim.observe(render=render), intervened=True)
            stall_check_s, stall_check_distance = sim.time_s, sim.distance_m
        elif sim.time_s - stall_check_s >= STALL_S - 1e-9:
            stalls += abs(sim.distance_m - stall_check_distance) < STALL_DISTANCE_M
            stall_check_s, stall_check_distance = sim.time_s, sim.distance_m
    wall_s = time.perf_counter() - started
    lap_times = [round(t, 3) for t in sim.lap_times]
    return {
        "track": sim.track.name,
        "track_length_m": round(sim.track.length, 2),
        "laps": sim.laps,
        "laps_requested": laps,
        "completed": sim.laps >= laps,
        "lap_times_s": lap_times,
        "mean_lap_time_s": round(float(np.mean(lap_times)), 3) if lap_times else None,
        "elapsed_s": round(sim.time_s, 3),
        "interventions": sim.interventions + stalls,
        "off_road": sim.interventions,
        "stalls": stalls,
        "autonomy": round(autonomy(sim.interventions + stalls, sim.time_s), 5),
        "mean_cte": round(abs_cte_sum / steps, 4) if steps else 0.0,
        "max_cte": round(max_cte, 4),
        "mean_speed_mps": round(sim.distance_m / sim.time_s, 3) if sim.time_s > 0 else 0.0,
        "frames": steps,
        "frames_per_s": round(steps / wall_s, 1) if wall_s > 0 else math.inf,
    }
