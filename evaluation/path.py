"""The recorded car's path: where it was at each record, how fast it went, how it answered.

Closed-loop replay (`evaluation.replay`) drives a pilot along this path. Three sources:

- **sim pose**: a simulator tub records the car's pose (`sim/x`, `sim/y`, `sim/yaw`): the truth.
- **pictures**: a real tub records no pose; its frames show the motion (visual odometry,
  `evaluation.odometry`): the floor gives the distance and the speed, the far scene the
  turn. Where a step cannot be measured, it is dead-reckoned from the labels.
- **labels**: dead reckoning alone: the recorded `user/angle` and `user/throttle` drive the
  vehicle model (throttle * max_speed_mps is the speed the ESC aims for). Its shape needs
  the real top speed and steering scale; kept as a cross-check of the pictures and for
  tubs without usable frames.

With the pictures, the labels' path is rebuilt at the measured speeds and compared
(`PathCheck`): how far the two disagree per metre driven. The same comparison scores the
pictures' path against a simulator tub's recorded pose (`tubcar replay-validation`).

How the car answered its steering (`evaluation.steering`): with the pictures, fitted on
the path itself (how far each command turned the car, how late, how gradually), and the
labels' path is dead-reckoned with that fit; a simulator tub keeps its exact vehicle model,
late by as many records as `response_delay` measures. Closed-loop replay steers the
simulated car through the same response, so a pilot's command does what it did on the car.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from car.channels import SIM_CTE, SIM_SPEED, SIM_X, SIM_Y, SIM_YAW, USER_ANGLE, USER_THROTTLE
from evaluation.odometry import Motion, VisualOdometry, compose
from evaluation.steering import SteeringResponse, fit_steering
from sim.camera import CameraModel
from sim.vehicle import VehicleModel, VehicleState

DEFAULT_RATE_HZ = 20.0  # the drive loop's rate; used when a tub's timestamps are not credible
PATH_SOURCES = ("auto", "pictures", "labels")
_CREDIBLE_DT_S = (0.01, 0.5)  # median frame interval outside this: timestamps are not real time
_MAX_DELAY_STEPS = 10


@dataclass(frozen=True)
class PathCheck:
    """How far two paths of the same records disagree over stretches of `stretch_m`
    driven: the median position (m) and heading (deg) difference per metre."""

    position_m_per_m: float
    heading_deg_per_m: float
    stretches: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "position_m_per_m": round(self.position_m_per_m, 4),
            "heading_deg_per_m": round(self.heading_deg_per_m, 3),
            "stretches": self.stretches,
        }


@dataclass
class RecordedPath:
    """Where the recorded car was at each record: poses (N, 3) x, y, yaw and speeds (N,).

    `cte` (N,): the simulator's cross-track error of each record when the tub has it (and
    the path is its pose); `positions` (N,): the records' positions in the list the path
    was built from; `angles` (N,): the recorded steering; `steering`: how the car turned
    for it; `check`: the labels' path against this one (pictures).
    """

    poses: np.ndarray
    speeds: np.ndarray
    dt_s: float
    source: str  # "sim pose", "pictures" or "labels"
    cte: np.ndarray | None = None
    positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))  # empty: 0..N-1
    angles: np.ndarray = field(default_factory=lambda: np.empty(0))  # empty: all 0
    steering: SteeringResponse = field(default_factory=lambda: SteeringResponse.of_vehicle(VehicleModel()))
    check: PathCheck | None = None
    unmeasured_steps: int = 0  # pictures: steps dead-reckoned because no picture measured them

    def __post_init__(self) -> None:
        steps = np.diff(self.poses[:, :2], axis=0)
        # (N,): distance driven from the first record to each record.
        self.arc_m = np.concatenate([[0.0], np.cumsum(np.hypot(steps[:, 0], steps[:, 1]))])
        if self.positions.size == 0:
            self.positions = np.arange(len(self.poses))
        if self.angles.size == 0:
            self.angles = np.zeros(len(self.poses))

    def moving(self, min_step_m: float = 0.01) -> RecordedPath:
        """The path without records where the car stood still, speeds measured between records.

        A car waiting at the start (or parked mid-session) leaves many records at one
        spot; they add nothing to a path and would stall a car told to drive their speed.
        """
        kept = [0]
        for position in range(1, len(self.poses)):
            if self.arc_m[position] - self.arc_m[kept[-1]] >= min_step_m:
                kept.append(position)
        keep = np.array(kept)
        arc, times = self.arc_m[keep], self.positions[keep] * self.dt_s
        speeds = np.diff(arc) / np.maximum(np.diff(times), 1e-9)  # (K-1,)
        speeds = np.concatenate([speeds, speeds[-1:]]) if speeds.size else self.speeds[keep]
        return RecordedPath(
            self.poses[keep],
            speeds,
            self.dt_s,
            self.source,
            self.cte[keep] if self.cte is not None else None,
            self.positions[keep],
            self.angles[keep],
            self.steering,
            self.check,
            self.unmeasured_steps,
        )

    def __len__(self) -> int:
        return len(self.poses)

    def relative(self, index: int, x: float, y: float, yaw: float) -> tuple[float, float, float]:
        """Pose (x, y, yaw) in record `index`'s car frame: (forward m, left m, heading rad)."""
        rx, ry, ryaw = self.poses[index]
        c, s = math.cos(ryaw), math.sin(ryaw)
        dx, dy = x - rx, y - ry
        return c * dx + s * dy, -s * dx + c * dy, wrap(yaw - ryaw)

    def nearest(self, x: float, y: float, hint: int, behind_m: float = 0.5, ahead_m: float = 3.0) -> int:
        """Index of the record nearest (x, y) within a stretch of path around `hint`.

        Searching only near the last match keeps a lap from snapping to another lap.
        """
        low = int(np.searchsorted(self.arc_m, self.arc_m[hint] - behind_m, side="left"))
        high = int(np.searchsorted(self.arc_m, self.arc_m[hint] + ahead_m, side="right"))
        high = max(high, min(hint + 2, len(self)))
        window = self.poses[low:high, :2]
        distances = np.hypot(window[:, 0] - x, window[:, 1] - y)
        return low + int(np.argmin(distances))

    def state_at(self, index: int) -> VehicleState:
        x, y, yaw = self.poses[index]
        return VehicleState(float(x), float(y), float(yaw), float(self.speeds[index]))

    def describe(self) -> str:
        """One line on where the path came from and how far to trust it."""
        if self.source == "sim pose":
            return "path: the simulator's recorded pose"
        speed = float(np.median(self.speeds[self.speeds > 0])) if np.any(self.speeds > 0) else 0.0
        line = f"path from the {self.source}: {self.arc_m[-1]:.1f} m at {speed:.2f} m/s (median)"
        if self.source == "pictures":
            line += f", {self.unmeasured_steps} steps dead-reckoned"
        if self.check is not None:
            line += (
                f"; dead reckoning from the labels with this steering disagrees by "
                f"{self.check.position_m_per_m:.3f} m and {self.check.heading_deg_per_m:.1f} deg per metre"
            )
        return line + "\n" + self.steering.describe()


def frame_interval_s(records: Sequence[dict[str, Any]], rate_hz: float = DEFAULT_RATE_HZ) -> float:
    """Median interval of the records' timestamps, or 1/rate_hz when they are not credible.

    Some tubs (test fixtures, copies) were written faster than real time; their
    timestamps say nothing about the driving, and the drive loop's rate is the truth.
    """
    stamps = [r["_timestamp_ms"] for r in records if isinstance(r.get("_timestamp_ms"), (int, float))]
    if len(stamps) >= 2:
        dt = statistics.median(np.diff(stamps)) / 1000.0
        if _CREDIBLE_DT_S[0] <= dt <= _CREDIBLE_DT_S[1]:
            return float(dt)
    return 1.0 / rate_hz


def _column(records: Sequence[dict[str, Any]], key: str) -> np.ndarray | None:
    """(N,) values of one numeric field, or None unless every record has it."""
    if records and all(r.get(key) is not None for r in records):
        return np.array([r[key] for r in records], dtype=np.float64)
    return None


def recorded_path(
    records: Sequence[dict[str, Any]],
    vehicle: VehicleModel,
    rate_hz: float = DEFAULT_RATE_HZ,
    *,
    source: str = "auto",
    frames: Callable[[], Iterable[np.ndarray | None]] | None = None,
    camera: CameraModel | None = None,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> RecordedPath:
    """The recorded car's path (see the module docstring).

    `source`: "auto" takes the simulator's pose when every record has it, else the
    pictures (`frames()` yields the records' frames in order, taken by `camera`), else the
    labels; "pictures" ignores any recorded pose (a simulator tub replayed as if real);
    "labels" dead-reckons.
    """
    if source not in PATH_SOURCES:
        raise ValueError(f"path source must be one of {PATH_SOURCES}, got {source!r}")
    if not records:
        raise ValueError("cannot build a path from an empty tub")
    dt = frame_interval_s(records, rate_hz)
    angles = np.array([r[USER_ANGLE] for r in records], dtype=np.float64)
    pose = [_column(records, key) for key in (SIM_X, SIM_Y, SIM_YAW)]
    if source == "auto" and all(column is not None for column in pose):
        poses = np.stack([column for column in pose if column is not None], axis=1)  # (N, 3)
        speeds = _column(records, SIM_SPEED)
        if speeds is None:
            steps = np.hypot(*np.diff(poses[:, :2], axis=0).T) / dt
            speeds = np.concatenate([steps[:1], steps])
        delay = response_delay(_turns(poses), angles, np.hypot(*np.diff(poses[:, :2], axis=0).T))
        steering = SteeringResponse.of_vehicle(vehicle, delay)
        return RecordedPath(
            poses, speeds, dt, "sim pose", _column(records, SIM_CTE), angles=angles, steering=steering
        )
    if source != "labels" and frames is not None and camera is not None:
        motions = VisualOdometry(camera).measure(frames(), progress)
        if source == "pictures" or any(m.reliable and m.forward_m > 0 for m in motions):
            return _pictures_path(motions, vehicle, dt, angles)
        # "auto" and no picture shows the car moving (no floor in view): the labels are all there is.
    if source == "pictures":
        raise ValueError("a path from the pictures needs the frames and the camera that took them")
    throttles = np.array([r[USER_THROTTLE] for r in records], dtype=np.float64)
    poses, speeds = dead_reckon(vehicle, angles, dt, throttles=throttles)
    steering = SteeringResponse.of_vehicle(vehicle)
    return RecordedPath(poses, speeds, dt, "labels", angles=angles, steering=steering)


def _pictures_path(
    motions: list[Motion],
    vehicle: VehicleModel,
    dt: float,
    angles: np.ndarray,
) -> RecordedPath:
    """Poses from the measured motions; unmeasured steps dead-reckoned; the labels' path beside it."""
    measured = np.array([(m.forward_m, m.left_m, m.turn_rad) for m in motions]).reshape(-1, 3)
    reliable = np.array([m.reliable for m in motions], dtype=bool)
    distance = np.hypot(measured[:, 0], measured[:, 1])
    moving = reliable & (distance > 0)
    steering = fit_steering(measured[:, 2], distance, angles, moving, vehicle) or SteeringResponse.of_vehicle(
        vehicle, response_delay(measured[:, 2], angles, distance, moving)
    )
    typical = float(np.median(distance[moving])) if moving.any() else 0.0
    steps = np.where(reliable, distance, typical)  # (N-1,) metres per step
    # The labels' path at the measured speed: the cross-check, and the fallback step by step.
    labels_poses, _ = dead_reckon(vehicle, angles, dt, step_lengths=steps, steering=steering)
    pose_list = [np.zeros(3)]
    for k, motion in enumerate(measured):
        step = tuple(float(value) for value in motion)
        if not reliable[k]:  # the labels' step from here
            x, y, yaw = labels_poses[k]
            c, s = math.cos(yaw), math.sin(yaw)
            dx, dy = labels_poses[k + 1, :2] - (x, y)
            step = (c * dx + s * dy, -s * dx + c * dy, wrap(labels_poses[k + 1, 2] - yaw))
        pose_list.append(compose(pose_list[-1], step))
    poses = np.array(pose_list)
    speeds = np.concatenate([steps[:1], steps]) / dt if len(steps) else np.zeros(1)
    check = compare_paths(poses, labels_poses)
    return RecordedPath(
        poses,
        speeds,
        dt,
        "pictures",
        angles=angles,
        steering=steering,
        check=check,
        unmeasured_steps=int((~reliable).sum()),
    )


def dead_reckon(
    vehicle: VehicleModel,
    angles: np.ndarray,
    dt: float,
    *,
    throttles: np.ndarray | None = None,
    step_lengths: np.ndarray | None = None,
    steering: SteeringResponse | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Poses (N, 3) and speeds (N,) of the vehicle model driven by the recorded angles.

    The speed comes from `step_lengths` (N-1,: metres per step, measured) or else from the
    `throttles` through the model's top speed; the turn from `steering` (default: the
    vehicle model's own, answering at once). Starts at rest at the origin, as after
    Donkeycar's auto-record.
    """
    servo = (steering or SteeringResponse.of_vehicle(vehicle)).servo(angles[:1])
    state, poses, speeds = VehicleState(), [], []
    for k in range(len(angles)):
        poses.append((state.x, state.y, state.yaw))
        speeds.append(state.speed)
        if k == len(angles) - 1:
            break
        curvature = servo.step(float(angles[k]))
        if step_lengths is not None:
            speed = step_lengths[k] / dt
            state = VehicleState(state.x, state.y, state.yaw, speed)
            state = vehicle.drive(state, curvature, speed / vehicle.max_speed_mps, dt)
        elif throttles is not None:
            state = vehicle.drive(state, curvature, float(throttles[k]), dt)
        else:
            raise ValueError("dead reckoning needs the throttles or the step lengths")
    return np.array(poses), np.array(speeds)


def response_delay(
    turns: np.ndarray, angles: np.ndarray, distances: np.ndarray, usable: np.ndarray | None = None
) -> int:
    """How many records the car's turn lags its steering: the lag at which the recorded
    angle best predicts the turn per metre (steering right, + angle, turns clockwise).
    0 when the tub steers too little to tell."""
    curvature = np.where(distances > 1e-3, turns / np.maximum(distances, 1e-3), 0.0)  # (N-1,)
    ok = (distances > 1e-3) if usable is None else usable & (distances > 1e-3)
    best, best_correlation = 0, -0.3  # weaker than this: no evidence of any delay
    for lag in range(min(_MAX_DELAY_STEPS, len(curvature) - 10) + 1):
        steer, turn = angles[: len(curvature) - lag], curvature[lag:]
        keep = ok[lag:]
        if keep.sum() < 10 or np.std(steer[keep]) < 1e-6 or np.std(turn[keep]) < 1e-9:
            continue
        correlation = float(np.corrcoef(steer[keep], turn[keep])[0, 1])
        if correlation < best_correlation:
            best, best_correlation = lag, correlation
    return best


def compare_paths(path: np.ndarray, reference: np.ndarray, stretch_m: float = 1.0) -> PathCheck:
    """How far `path` (N, 3) drifts from `reference` (N, 3) over each stretch of about
    `stretch_m` of the reference: both start the stretch at the same pose, and the
    difference at its end, per metre, is the drift. Medians over stretches a quarter
    stretch apart."""
    steps = np.hypot(*np.diff(reference[:, :2], axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    positions, headings = [], []
    start = 0
    while True:
        end = int(np.searchsorted(arc, arc[start] + stretch_m))
        if end >= len(arc):
            break
        length = arc[end] - arc[start]
        a, b = _local(path, start, end), _local(reference, start, end)
        positions.append(math.hypot(a[0] - b[0], a[1] - b[1]) / length)
        headings.append(abs(math.degrees(wrap(a[2] - b[2]))) / length)
        start = int(np.searchsorted(arc, arc[start] + stretch_m / 4))
    if not positions:
        return PathCheck(math.nan, math.nan, 0)
    return PathCheck(float(np.median(positions)), float(np.median(headings)), len(positions))


def _local(poses: np.ndarray, start: int, end: int) -> tuple[float, float, float]:
    """Pose `end` in the frame of pose `start`."""
    x, y, yaw = poses[start]
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = poses[end, 0] - x, poses[end, 1] - y
    return c * dx + s * dy, -s * dx + c * dy, wrap(poses[end, 2] - yaw)


def _turns(poses: np.ndarray) -> np.ndarray:
    return np.array([wrap(a) for a in np.diff(poses[:, 2])])


def wrap(angle: float) -> float:
    """An angle in [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
