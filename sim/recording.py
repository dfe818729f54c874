"""Record the expert driving a simulated track into a tub, ready for training.

Each record is the camera frame at one step, the expert's command for that frame as the
label (`user/angle`, `user/throttle`; mode "user", as if a person drove) and the car's pose
(`sim/*`). With steering noise the car is driven by the noisy command while the label
stays the expert's, so the tub holds recoveries from off-centre positions. Records are
time-stamped in simulated time (50 ms apart at 20 Hz) however fast the recording runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from car import channels
from sim.expert import ExpertDriver
from sim.simulation import Simulation

TUB_FIELDS = {
    channels.CAMERA_IMAGE: "image_array",
    channels.USER_ANGLE: "float",
    channels.USER_THROTTLE: "float",
    channels.USER_MODE: "str",
    channels.SIM_X: "float",
    channels.SIM_Y: "float",
    channels.SIM_YAW: "float",
    channels.SIM_SPEED: "float",
    channels.SIM_CTE: "float",
    channels.SIM_TRACK: "str",
}


def record_tub(
    sim: Simulation,
    out: str | Path,
    laps: int = 2,
    *,
    noise: float = 0.3,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Let the expert drive `laps` laps with steering `noise` and write every step to the
    tub at `out` (created, or appended to). Returns a summary of what was recorded."""
    from car.tub import TubWriter  # the tub writer is only needed when recording

    if laps < 1:
        raise ValueError(f"laps must be >= 1, got {laps}")
    expert = ExpertDriver(sim.track, sim.vehicle, noise=noise, dt=sim.dt, seed=seed)
    observation = sim.reset()
    if max_seconds is None:
        max_seconds = 60.0 + laps * sim.track.length / 0.5
    metadata = {
        "source": "sim expert",
        "track": sim.track.name,
        "track_seed": sim.track.seed,
        "track_length_m": round(sim.track.length, 3),
        "track_width_m": round(sim.track.width_m, 3),
        "expert_noise": noise,
        "dt_s": sim.dt,
        "camera": {
            k: getattr(sim.camera, k)
            for k in ("height_m", "pitch_deg", "fov_deg", "width", "height", "forward_m")
        },
    }
    start_ms = int(time.time() * 1000)
    records = 0
    bar = tqdm(
        total=laps,
        unit="lap",
        desc=f"record {sim.track.name}",
        disable=not progress,
        bar_format="{l_bar}{bar}| {n:.2f}/{total} laps [{elapsed}<{remaining}]",
    )
    with TubWriter(out, list(TUB_FIELDS), list(TUB_FIELDS.values()), metadata=metadata) as writer:
        while sim.laps < laps and sim.time_s < max_seconds:
            if observation.intervened:  # that frame is off the road; the car now stands back on it
                expert.reset()
                observation = sim.observe()
            command = expert.command(sim.state)
            state = sim.state
            writer.write(
                {
                    channels.CAMERA_IMAGE: observation.image,
                    channels.USER_ANGLE: command.angle,
                    channels.USER_THROTTLE: command.throttle,
                    channels.USER_MODE: channels.MODE_USER,
                    channels.SIM_X: state.x,
                    channels.SIM_Y: state.y,
                    channels.SIM_YAW: state.yaw,
                    channels.SIM_SPEED: state.speed,
                    channels.SIM_CTE: observation.cte,
                    channels.SIM_TRACK: sim.track.name,
                    "_timestamp_ms": start_ms + int(round(sim.time_s * 1000)),
                }
            )
            records += 1
            observation = sim.step(command.applied_angle, command.throttle)
            bar.update(min(max(sim.progress, 0.0), laps) - bar.n)
    bar.close()
    return {
        "tub": str(out),
        "track": sim.track.name,
        "records": records,
        "laps": sim.laps,
        "lap_times_s": [round(t, 3) for t in sim.lap_times],
        "interventions": sim.interventions,
        "simulated_s": round(sim.time_s, 2),
        "noise": noise,
    }
