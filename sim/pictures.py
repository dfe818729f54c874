"""Pictures of the simulator for people: track maps, camera views, real vs simulated.

`track_map` draws a track from above (road, markings, start line and direction);
`save_track_picture` adds camera views along it; `save_camera_comparison` puts real
camera frames above simulated ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sim.camera import CameraModel
from sim.effects import ImageEffects
from sim.expert import ExpertDriver
from sim.lens import distort_points
from sim.scene import render_topdown
from sim.simulation import Simulation
from sim.track import Track

RED = (220, 40, 40)
GREEN = (40, 200, 60)


def track_map(track: Track, size: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """The track's floor texture scaled to fit `size` pixels, with the start line and an
    arrow in the driving direction. Returns (RGB uint8 image, 3x3 world -> map pixel)."""
    topdown = render_topdown(track, px_per_m=40.0)
    min_x, min_y, max_x, max_y = track.bounds(margin_m=0.5)  # crop to the road and a little floor
    (left, top), (right, bottom) = to_pixels(
        topdown.world_to_pixel, np.array([[min_x, max_y], [max_x, min_y]])
    )
    crop = np.array([[1.0, 0, -left], [0, 1.0, -top], [0, 0, 1.0]])
    scale = size / max(right - left, bottom - top)
    image = cv2.resize(
        topdown.image[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
    )
    world_to_map = np.diag([scale, scale, 1.0]) @ crop @ topdown.world_to_pixel
    x, y, heading = track.pose_at(0.0)
    start = to_pixels(world_to_map, np.array([[x, y]]))[0]
    normal = np.array([-np.sin(heading), np.cos(heading)]) * track.width_m / 2
    centre = np.array([x, y])
    ends = to_pixels(world_to_map, np.array([centre + normal, centre - normal]))
    cv2.line(image, tuple(ends[0]), tuple(ends[1]), GREEN, max(2, size // 200), cv2.LINE_AA)
    tip = to_pixels(world_to_map, np.array([[x + np.cos(heading), y + np.sin(heading)]]))[0]
    cv2.arrowedLine(image, tuple(start), tuple(tip), GREEN, max(2, size // 200), cv2.LINE_AA, tipLength=0.3)
    return image, world_to_map


def save_track_picture(track: Track, out: str | Path, views: int = 4) -> Path:
    """PNG of the map above `views` camera frames taken along the centre line."""
    sim = Simulation(track)
    frames = []
    for k in range(views):
        sim.reset(k * track.length / views)
        frames.append(cv2.resize(sim.render(), None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR))
    strip = np.hstack(frames)
    picture, _ = track_map(track, size=strip.shape[1])
    label = (
        f"{track.name}: {track.length:.1f} m, width {track.width_m:.2f} m, "
        f"tightest radius {track.min_radius_m:.2f} m"
    )
    cv2.putText(picture, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(np.vstack([picture, strip]), cv2.COLOR_RGB2BGR)):
        raise OSError(f"{out}: could not write the picture")
    return out


def save_camera_comparison(
    real_frames: list[np.ndarray],
    track: Track,
    out: str | Path,
    *,
    driver: dict[str, Any] | None = None,
    effects: ImageEffects = ImageEffects(),
    camera: CameraModel | None = None,
) -> Path:
    """PNG with real camera frames (top row) above simulated ones (bottom row), both 3x
    enlarged, to hold the simulator's camera and track up against a real car's. The
    simulated frames are the expert's view, spread over one lap driven with the `driver`
    options (`ExpertDriver`'s: lane, lane_offset_m, corner_cut_m2, ...; default: the centre);
    the simulated camera's horizon, bent by its lens, is marked on both rows."""
    sim = Simulation(track, camera=CameraModel() if camera is None else camera, effects=effects)
    expert = ExpertDriver(track, sim.vehicle, dt=sim.dt, **(driver or {}))
    poses = []
    while sim.laps < 1 and sim.time_s < 600:
        command = expert.command(sim.state)
        sim.step(command.angle, command.throttle, render=False)
        poses.append(sim.state)
    count = len(real_frames)
    simulated = []
    for k in range(count):
        sim.state = poses[(2 * k + 1) * len(poses) // (2 * count)]
        simulated.append(sim.render().copy())
    horizon = _horizon_curve(sim.camera) * 3
    rows = []
    for frames in (real_frames, simulated):
        row = cv2.resize(np.hstack(frames), None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
        for k in range(count):
            shifted = np.round(horizon + np.array([k * sim.camera.width * 3, 0])).astype(np.int32)
            cv2.polylines(row, [shifted.reshape(-1, 1, 2)], False, RED, 1, cv2.LINE_AA)
        rows.append(row)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(out), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"{out}: could not write the picture")
    return out


def _horizon_curve(camera: CameraModel) -> np.ndarray:
    """Lens pixels (N, 2) of the horizon across the frame, pixel centres at +0.5."""
    columns = np.linspace(-0.25 * camera.width, 1.25 * camera.width, 64)
    pinhole = np.column_stack([columns, np.full(len(columns), camera.horizon_row)])
    return distort_points(camera, pinhole) + 0.5


def to_pixels(world_to_map: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World points (N, 2) -> integer map pixels (N, 2)."""
    mapped = points @ world_to_map[:2, :2].T + world_to_map[:2, 2]
    return np.round(mapped).astype(np.int32)
