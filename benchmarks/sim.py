"""Simulator speed and the expert's record: `bench.py sim`.

Speed: drives the expert round a seeded track, stepping physics and rendering the camera
every step, with OpenCV held to one thread. Reported: `frames_per_s` (step + render, the
issue's figure), the split between them, and the one-off cost of building a track's
textures. `--preset warehouse` times the real track's look with its camera effects (noise,
blur, exposure) and the expert in `--lane`. Expert: drives `--expert-seeds` seeded tracks
of the preset one lap each, noise-free (what `sim.py drive --model expert` does) and with
the recording's steering noise (what `sim.py record` does), and reports autonomy,
interventions and CTE over them.
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=4000, help="frames to time")
    parser.add_argument("--track", type=int, default=1, help="track seed")
    parser.add_argument(
        "--expert-seeds", type=int, default=50, help="seeds 0..N-1 the expert drives a lap on"
    )
    parser.add_argument("--noise", type=float, default=0.3, help="steering noise of the recording runs")
    parser.add_argument("--preset", default="mixed", help="track preset: mixed or warehouse")
    parser.add_argument("--lane", default="centre", help="the expert's lane: centre, right or left")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import cv2
    import numpy as np

    from evaluation.scoring import expert_pilot, score
    from sim import ExpertDriver, Simulation, Track
    from sim.presets import get_preset

    cv2.setNumThreads(1)
    started = time.perf_counter()
    track = Track.from_seed(args.track, args.preset)
    sim = Simulation(track, effects=get_preset(args.preset).effects)
    sim.render()  # builds the textures
    build_s = time.perf_counter() - started
    expert = ExpertDriver(track, sim.vehicle, dt=sim.dt, lane=args.lane)
    commands = []
    for _ in range(args.frames):  # the expert's commands, so its own cost is not timed
        command = expert.command(sim.state)
        commands.append((command.angle, command.throttle))
        sim.step(command.angle, command.throttle, render=False)

    sim.reset(render=False)
    step_s = np.empty(args.frames)
    render_s = np.empty(args.frames)
    for i, (angle, throttle) in enumerate(commands):
        t0 = time.perf_counter()
        sim.step(angle, throttle, render=False)
        t1 = time.perf_counter()
        sim.render()
        render_s[i] = time.perf_counter() - t1
        step_s[i] = t1 - t0
    total = step_s + render_s
    seeds = range(args.expert_seeds)
    expert_scores = [
        score(expert_pilot(s, lane=args.lane), s, laps=1, render=False)
        for s in (Simulation(Track.from_seed(i, args.preset)) for i in seeds)
    ]
    noisy = [
        score(expert_pilot(s, noise=args.noise, seed=i, lane=args.lane), s, laps=1, render=False)
        for i, s in ((i, Simulation(Track.from_seed(i, args.preset))) for i in seeds)
    ]
    return {
        "track": track.name,
        "preset": args.preset,
        "lane": args.lane,
        "frame": f"{sim.camera.width}x{sim.camera.height} RGB",
        "frames": args.frames,
        "frames_per_s": round(args.frames / total.sum(), 1),
        "median_frame_us": round(float(np.median(total)) * 1e6, 1),
        "median_render_us": round(float(np.median(render_s)) * 1e6, 1),
        "median_physics_us": round(float(np.median(step_s)) * 1e6, 1),
        "track_build_s": round(build_s, 3),
        "opencv_threads": cv2.getNumThreads(),
        "expert_seeds": args.expert_seeds,
        "expert_laps_completed": sum(r["laps"] for r in expert_scores),
        "expert_min_autonomy": min((r["autonomy"] for r in expert_scores), default=None),
        "expert_interventions": sum(r["interventions"] for r in expert_scores),
        "expert_worst_max_cte_m": max((r["max_cte"] for r in expert_scores), default=None),
        "expert_mean_speed_mps": round(float(np.mean([r["mean_speed_mps"] for r in expert_scores])), 2)
        if expert_scores
        else None,
        "recording_noise": args.noise,
        "recording_interventions": sum(r["interventions"] for r in noisy),
        "recording_mean_abs_cte_m": round(float(np.mean([r["mean_cte"] for r in noisy])), 3)
        if noisy
        else None,
        "recording_worst_max_cte_m": max((r["max_cte"] for r in noisy), default=None),
    }
