"""Record the expert driving a simulated track into a tub, ready for training.

The expert sits in the human's seat of the car's own loop (`build_car` with the
simulator's camera and actuator, `ExpertController` as the controller) on a stepped
clock, and the car's `Recorder` writes the tub: each record is the camera frame at one
step, the expert's command for that frame as the label (`user/angle`, `user/throttle`;
mode "user", as if a person drove) and the car's pose (`sim/*`), exactly the fields and
metadata of a tub recorded with `tubcar drive --sim`. With steering noise the car is
pushed off its line while the label stays the expert's (see `ExpertController`), so the
tub holds recoveries from off-centre positions. Records are time-stamped in simulated
time (50 ms apart at 20 Hz) however fast the recording runs, and none is dropped: a
stepped loop waits for the disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from car.clock import SteppedClock
from car.vehicle import build_car
from sim.car import simulator_config
from sim.parts import ExpertController, SimActuator, SimCamera
from sim.simulation import Observation, Simulation


def record_tub(
    sim: Simulation,
    out: str | Path,
    laps: int = 2,
    *,
    noise: float = 0.3,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: bool = True,
    **driver: Any,
) -> dict[str, Any]:
    """Let the expert drive `laps` laps with steering `noise` and write every step to the
    tub at `out` (created, or appended to). Returns a summary of what was recorded.

    `driver`: the expert's lane and line (`lane`, `lane_offset_m`, `corner_cut_m2`,
    `min_lookahead_m`; `sim.presets.DriverStyle.options()` gives a preset's); they, the
    track's preset and the camera's lens go into the tub's metadata."""
    if laps < 1:
        raise ValueError(f"laps must be >= 1, got {laps}")
    limit_s = 60.0 + laps * sim.track.length / 0.5 if max_seconds is None else max_seconds
    bar = tqdm(
        total=laps,
        unit="lap",
        desc=f"record {sim.track.name}",
        disable=not progress,
        bar_format="{l_bar}{bar}| {n:.2f}/{total} laps [{elapsed}<{remaining}]",
    )

    def show_progress(observation: Observation) -> None:
        bar.update(min(max(observation.progress, 0.0), laps) - bar.n)

    sim.reset()  # renders the first frame, building the textures before the loop starts
    clock = SteppedClock()
    expert = ExpertController(sim, noise=noise, seed=seed, clock=clock, **driver)
    car = build_car(
        simulator_config(sim),
        camera=SimCamera(sim, clock),
        controller=expert,
        actuator=SimActuator(sim, steering_disturbance=expert.steering_noise, on_step=show_progress),
        clock=clock,
        tub_path=out,
    )
    try:
        car.loop.run(until=lambda: sim.laps >= laps or sim.time_s >= limit_s)
    finally:
        bar.close()
    return {
        "tub": str(out),
        "track": sim.track.name,
        "records": car.recorder.records,
        "laps": sim.laps,
        "lap_times_s": [round(t, 3) for t in sim.lap_times],
        "interventions": sim.interventions,
        "simulated_s": round(sim.time_s, 2),
        "noise": noise,
        "preset": sim.track.preset,
        "lane": expert.expert.driver.lane,
    }
