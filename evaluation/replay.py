"""Replay a recorded tub through a pilot: open loop (frame by frame) and closed loop.

Open loop asks "does the model say what the driver did on these frames?". It is cheap
and comparable, but a model with a small per-frame error can still drift off the road,
because its errors compound once its own steering decides what it sees next.

Closed loop answers that on recorded laps, as NVIDIA scored PilotNet: a simulated car
starts on the recorded path; at every step the pilot's command moves it with the
simulator's vehicle model; its offset from the recorded path is applied to the nearest
recorded frame by a flat-ground warp (`evaluation.warp`), and that is the next frame the
pilot sees. When the car strays more than a threshold from the path (simulator tubs:
when it would leave the road, the simulator's own rule, from the recorded CTE) or turns
too far from it, an intervention is counted and the car is put back on the path. Score:
autonomy = 1 - interventions * 6 s / elapsed s (6 s: a human taking over and handing
back, PilotNet's figure). The car drives the recorded speed (PilotNet's choice: it
scores the steering) or, on request, the pilot's throttle.

The recorded path: simulator tubs carry the car's pose (`sim/x`, `sim/y`, `sim/yaw`).
Real tubs have no pose, so the path is dead-reckoned: the recorded `user/angle` and
`user/throttle` drive the same vehicle model (throttle * max_speed_mps is the speed the
ESC aims for). Its shape is an estimate (wheel slip, the real top speed), but the warp
and the score only need it locally, where the estimate is good.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from car.channels import (
    CAMERA_IMAGE,
    SIM_CTE,
    SIM_SPEED,
    SIM_X,
    SIM_Y,
    SIM_YAW,
    USER_ANGLE,
    USER_THROTTLE,
)
from car.contracts import FramePolicy
from car.tub import Tub, TubProblem, TubRecordError
from evaluation.scoring import autonomy
from evaluation.warp import warp_frame
from sim.camera import CameraModel
from sim.simulation import OFF_TRACK_MARGIN_M
from sim.vehicle import VehicleModel, VehicleState

DEFAULT_RATE_HZ = 20.0  # the drive loop's rate; used when a tub's timestamps are not credible
_CREDIBLE_DT_S = (0.01, 0.5)  # median frame interval outside this: timestamps are not real time


# ---------------------------------------------------------------------------------- open loop
@dataclass
class OpenLoopResult:
    """Per-frame labels and predictions of one tub, in record order."""

    records: list[dict[str, Any]]  # the replayed records (image keys hold file names)
    recorded: np.ndarray  # (N, 2): recorded angle, throttle
    predicted: np.ndarray  # (N, 2): the pilot's angle, throttle
    problems: list[TubProblem] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.recorded)

    def metrics(self) -> dict[str, float | int]:
        """Errors of steering and throttle, beside predicting the tub's mean label.

        The baseline constant is this tub's own mean, the best any constant can do here:
        a model must beat it to have learnt anything from the images.
        """
        if self.frames == 0:
            raise ValueError("no frames were replayed: the tub has no readable records")
        error = self.predicted - self.recorded  # (N, 2)
        spread = self.recorded - self.recorded.mean(axis=0)  # (N, 2)
        return {
            "frames": self.frames,
            "skipped": len(self.problems),
            "steering_mse": float(np.mean(error[:, 0] ** 2)),
            "steering_mae": float(np.mean(np.abs(error[:, 0]))),
            "throttle_mse": float(np.mean(error[:, 1] ** 2)),
            "throttle_mae": float(np.mean(np.abs(error[:, 1]))),
            "baseline_steering_mse": float(np.mean(spread[:, 0] ** 2)),
            "baseline_steering_mae": float(np.mean(np.abs(spread[:, 0]))),
            "baseline_throttle_mse": float(np.mean(spread[:, 1] ** 2)),
            "baseline_throttle_mae": float(np.mean(np.abs(spread[:, 1]))),
        }


def open_loop(
    tub: Tub,
    pilot: FramePolicy,
    on_frame: Callable[[np.ndarray, dict[str, Any], tuple[float, float]], None] | None = None,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> OpenLoopResult:
    """Run every readable frame of the tub through the pilot, exactly as the car would.

    `on_frame(frame, record, (angle, throttle))` sees each frame (e.g. to write a video);
    `keep(record)` selects records (e.g. a held-out block). Records without both labels
    are skipped and reported in the result's problems.
    """
    records, recorded, predicted = [], [], []
    problems: list[TubProblem] = []
    shape = None  # every frame must have the first one's size: the pilot expects one size
    for record in progress(tub.records()):
        if keep is not None and not keep(record):
            continue
        labels = (record.get(USER_ANGLE), record.get(USER_THROTTLE))
        if record.get(CAMERA_IMAGE) is None or None in labels:
            problems.append(
                TubProblem(str(tub.path), None, f"record {record['_index']} lacks an image or a label")
            )
            continue
        try:
            frame = tub.load_image(record)
        except TubRecordError as err:
            problems.append(TubProblem(str(tub.path), None, f"record {record['_index']}: {err}"))
            continue
        shape = shape or frame.shape
        if frame.shape != shape:
            size = f"{frame.shape[1]}x{frame.shape[0]}, the first frame is {shape[1]}x{shape[0]}"
            problems.append(TubProblem(str(tub.path), None, f"record {record['_index']}: image is {size}"))
            continue
        prediction = pilot.run(frame)
        if on_frame is not None:
            on_frame(frame, record, prediction)
        records.append(record)
        recorded.append(labels)
        predicted.append(prediction)
    return OpenLoopResult(
        records=records,
        recorded=np.asarray(recorded, dtype=np.float64).reshape(-1, 2),
        predicted=np.asarray(predicted, dtype=np.float64).reshape(-1, 2),
        problems=tub.problems + problems,
    )


# ------------------------------------------------------------------------------ recorded path
@dataclass
class RecordedPath:
    """Where the recorded car was at each record: poses (N, 3) x, y, yaw and speeds (N,).

    `cte` (N,) is the simulator's cross-track error of each record when the tub has it;
    `positions` (N,) the records' positions in the list the path was built from.
    """

    poses: np.ndarray
    speeds: np.ndarray
    dt_s: float  # seconds between records
    source: str  # "sim pose" or "dead reckoning"
    cte: np.ndarray | None = None
    positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        steps = np.diff(self.poses[:, :2], axis=0)
        # (N,): distance driven from the first record to each record.
        self.arc_m = np.concatenate([[0.0], np.cumsum(np.hypot(steps[:, 0], steps[:, 1]))])
        if self.positions is None:
            self.positions = np.arange(len(self.poses))

    def moving(self, min_step_m: float = 0.01) -> RecordedPath:
        """The path without records where the car stood still, speeds measured between records.

        A car waiting at the start (or parked mid-session) leaves many records at one
        spot; they add nothing to a path and would stall a car told to drive their speed.
        """
        keep = [0]
        for position in range(1, len(self.poses)):
            if self.arc_m[position] - self.arc_m[keep[-1]] >= min_step_m:
                keep.append(position)
        keep = np.array(keep)
        arc, times = self.arc_m[keep], self.positions[keep] * self.dt_s
        speeds = np.diff(arc) / np.maximum(np.diff(times), 1e-9)  # (K-1,)
        speeds = np.concatenate([speeds, speeds[-1:]]) if speeds.size else self.speeds[keep]
        cte = self.cte[keep] if self.cte is not None else None
        return RecordedPath(self.poses[keep], speeds, self.dt_s, self.source, cte, self.positions[keep])

    def __len__(self) -> int:
        return len(self.poses)

    def relative(self, index: int, x: float, y: float, yaw: float) -> tuple[float, float, float]:
        """Pose (x, y, yaw) in record `index`'s car frame: (forward m, left m, heading rad)."""
        rx, ry, ryaw = self.poses[index]
        c, s = math.cos(ryaw), math.sin(ryaw)
        dx, dy = x - rx, y - ry
        return c * dx + s * dy, -s * dx + c * dy, _wrap(yaw - ryaw)

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
    records: Sequence[dict[str, Any]], vehicle: VehicleModel, rate_hz: float = DEFAULT_RATE_HZ
) -> RecordedPath:
    """The recorded car's path: the simulator's pose if recorded, else dead reckoning."""
    if not records:
        raise ValueError("cannot build a path from an empty tub")
    dt = frame_interval_s(records, rate_hz)
    pose = [_column(records, key) for key in (SIM_X, SIM_Y, SIM_YAW)]
    if all(column is not None for column in pose):
        poses = np.stack(pose, axis=1)  # (N, 3)
        speeds = _column(records, SIM_SPEED)
        if speeds is None:
            steps = np.hypot(*np.diff(poses[:, :2], axis=0).T) / dt
            speeds = np.concatenate([steps[:1], steps])
        return RecordedPath(poses, speeds, dt, "sim pose", cte=_column(records, SIM_CTE))
    state = VehicleState()  # at rest where recording began, as after Donkeycar's auto-record
    poses, speeds = [], []
    for record in records:
        poses.append((state.x, state.y, state.yaw))
        speeds.append(state.speed)
        state = vehicle.step(state, record[USER_ANGLE], record[USER_THROTTLE], dt)
    return RecordedPath(np.array(poses), np.array(speeds), dt, "dead reckoning")


# ---------------------------------------------------------------------------- closed loop
@dataclass(frozen=True)
class ClosedLoopConfig:
    """When the safety driver takes over, and how the simulated car is driven."""

    # |lateral offset from the recorded path| that ends autonomy: within it the warp shows a
    # model what it would really see (scripts/replay_validation.py measures how closely).
    max_offset_m: float = 0.3
    # Simulator tubs: when set, the car is off the road when |recorded CTE + offset| exceeds
    # this (the built-in simulator's rule: half the road width plus its margin) instead.
    road_half_width_m: float | None = None
    max_heading_deg: float = 45.0  # beyond this the warp is meaningless: the car is lost
    speed: str = "recorded"  # "recorded": the path's speed (PilotNet); "model": pilot throttle
    stall_s: float = 3.0  # with speed="model": no progress this long is an intervention
    fill: str = "replicate"  # how warped frames fill what the recorded camera never saw

    def __post_init__(self) -> None:
        if self.speed not in ("recorded", "model"):
            raise ValueError(f"speed must be 'recorded' or 'model', got {self.speed!r}")
        if self.max_offset_m <= 0 or not 0 < self.max_heading_deg < 90:
            raise ValueError("max_offset_m must be > 0 and max_heading_deg in (0, 90)")
        if self.road_half_width_m is not None and self.road_half_width_m <= 0:
            raise ValueError("road_half_width_m must be > 0")


@dataclass
class ClosedLoopStep:
    """One control step: which record was warped, how far off the car was, what the pilot did."""

    time_s: float
    index: int  # position on the recorded path
    record_index: int  # the `_index` of the recorded frame that was warped
    forward_m: float
    lateral_m: float  # + = left of the recorded path
    heading_rad: float  # + = turned left of the recorded heading
    cte_m: float | None  # estimated CTE of the car (sim tubs): recorded CTE + lateral offset
    angle: float
    throttle: float
    intervention: bool


@dataclass
class ClosedLoopResult:
    steps: list[ClosedLoopStep]
    path: RecordedPath
    config: ClosedLoopConfig
    dt_s: float
    problems: list[TubProblem] = field(default_factory=list)  # frames that could not be shown

    @property
    def interventions(self) -> int:
        return sum(step.intervention for step in self.steps)

    @property
    def elapsed_s(self) -> float:
        return len(self.steps) * self.dt_s

    def metrics(self) -> dict[str, float | int | str | None]:
        offsets = np.abs([step.lateral_m for step in self.steps])
        headings = np.degrees(np.abs([step.heading_rad for step in self.steps]))
        ctes = np.abs([step.cte_m for step in self.steps if step.cte_m is not None])
        return {
            "autonomy": float(autonomy(self.interventions, self.elapsed_s)),
            "interventions": self.interventions,
            "elapsed_s": self.elapsed_s,
            "mean_offset": float(offsets.mean()),
            "max_offset": float(offsets.max()),
            "mean_heading_error_deg": float(headings.mean()),
            "mean_cte": float(ctes.mean()) if ctes.size else None,
            "max_cte": float(ctes.max()) if ctes.size else None,
            "steps": len(self.steps),
            "records": len(self.path),
            "skipped_frames": len(self.problems),
            "path": self.path.source,
            "speed": self.config.speed,
            "intervention_rule": "road edge" if self._uses_road(self.path) else "offset from path",
        }

    def _uses_road(self, path: RecordedPath) -> bool:
        return self.config.road_half_width_m is not None and path.cte is not None


class _FrameCache:
    """Decoded recorded frames by record position; consecutive steps reuse the same few.

    A frame that does not decode, or has another size than the first, is skipped and
    counted in `problems`: the pilot sees the nearest good frame before it instead.
    """

    def __init__(self, tub: Tub, records: Sequence[dict[str, Any]], size: int = 64) -> None:
        self._tub, self._records, self._size = tub, records, size
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bad: dict[int, TubProblem] = {}
        self._shape: tuple[int, ...] | None = None

    @property
    def problems(self) -> list[TubProblem]:
        return [self._bad[position] for position in sorted(self._bad)]

    def __getitem__(self, position: int) -> np.ndarray:
        for candidate in [*range(position, -1, -1), *range(position + 1, len(self._records))]:
            frame = self._load(candidate)
            if frame is not None:
                return frame
        raise ValueError(f"{self._tub.path}: none of the replayed frames decodes")

    def _load(self, position: int) -> np.ndarray | None:
        if position in self._frames:
            self._frames.move_to_end(position)
            return self._frames[position]
        if position in self._bad:
            return None
        record = self._records[position]
        try:
            frame = self._tub.load_image(record)
        except TubRecordError as err:
            self._bad[position] = TubProblem(str(self._tub.path), None, f"record {record['_index']}: {err}")
            return None
        self._shape = self._shape or frame.shape
        if frame.shape != self._shape:
            reason = f"record {record['_index']}: image is {frame.shape[1]}x{frame.shape[0]}, not the first's"
            self._bad[position] = TubProblem(str(self._tub.path), None, reason)
            return None
        self._frames[position] = frame
        if len(self._frames) > self._size:
            self._frames.popitem(last=False)
        return frame


def camera_for_tub(tub: Tub, config_camera: dict | None = None, flags: dict | None = None) -> CameraModel:
    """The camera that took the tub's frames, for the warp.

    Precedence: `flags` (the user's), then what a simulator tub recorded in its metadata
    (the truth for its frames), then `config_camera` (a car config's [camera]), then the
    `CameraModel` defaults (the real Donkey car's). The image size is the frames' own.
    """
    first = next(iter(tub.records(load_images=True)), None)
    if first is None or first.get(CAMERA_IMAGE) is None:
        raise ValueError(f"{tub.path}: no readable camera frame to size the camera model")
    fields: dict[str, Any] = {}
    for source in (config_camera or {}, tub.metadata.get("camera", {}), flags or {}):
        fields.update(
            {k: v for k, v in source.items() if k in CameraModel.__dataclass_fields__ and v is not None}
        )
    height, width = first[CAMERA_IMAGE].shape[:2]
    return CameraModel(**{**fields, "width": width, "height": height})


def road_half_width_m(tub: Tub) -> float | None:
    """Simulator tubs: where the simulator's road ends (half its width plus its margin)."""
    width = tub.metadata.get("track_width_m")
    return width / 2 + OFF_TRACK_MARGIN_M if isinstance(width, (int, float)) else None


def usable_records(tub: Tub, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """Records with an image and both labels, in order (labels only; images load lazily)."""
    return [
        r
        for r in tub.records()
        if r.get(CAMERA_IMAGE) is not None
        and r.get(USER_ANGLE) is not None
        and r.get(USER_THROTTLE) is not None
        and (keep is None or keep(r))
    ]


def closed_loop(
    tub: Tub,
    pilot: FramePolicy,
    camera: CameraModel,
    vehicle: VehicleModel = VehicleModel(),
    config: ClosedLoopConfig = ClosedLoopConfig(),
    rate_hz: float = DEFAULT_RATE_HZ,
    on_step: Callable[[np.ndarray, ClosedLoopStep], None] | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> ClosedLoopResult:
    """Drive the pilot along the tub's recorded path, seeing warped recorded frames.

    Runs until the car reaches the last record. `on_step(frame, step)` receives the frame
    the pilot saw at each step (e.g. to write a video or move a progress bar); `keep`
    selects the records that make the path (one contiguous stretch, e.g. a test block).
    """
    records = usable_records(tub, keep)
    if len(records) < 2:
        raise ValueError(
            f"{tub.path}: closed-loop replay needs at least 2 usable records, found {len(records)}"
        )
    path = recorded_path(records, vehicle, rate_hz).moving()
    if len(path) < 2:
        raise ValueError(f"{tub.path}: the car never moves in this tub; there is no path to replay")
    frames = _FrameCache(tub, [records[p] for p in path.positions])
    if frames[0].shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"{tub.path}: frames are {frames[0].shape[1]}x{frames[0].shape[0]}, "
            f"the camera model is {camera.width}x{camera.height}"
        )
    road = config.road_half_width_m if path.cte is not None else None
    max_heading = math.radians(config.max_heading_deg)
    dt = path.dt_s
    state, index, steps, last_progress_s = path.state_at(0), 0, [], 0.0
    # Enough steps to crawl the path at a quarter of its speed; a stalled car is reset.
    for step_number in range(4 * len(path) + 100):
        time_s = step_number * dt
        previous, index = index, path.nearest(state.x, state.y, index)
        if index == len(path) - 1:
            break
        if index > previous:
            last_progress_s = time_s
        forward, lateral, heading = path.relative(index, state.x, state.y, state.yaw)
        cte = float(path.cte[index]) + lateral if path.cte is not None else None
        frame = warp_frame(frames[index], camera, lateral, heading, forward, fill=config.fill)
        angle, throttle = pilot.run(frame)
        off_road = abs(cte) > road if road is not None else abs(lateral) > config.max_offset_m
        stalled = config.speed == "model" and time_s - last_progress_s > config.stall_s
        lost = off_road or abs(heading) > max_heading or stalled
        record_index = int(records[path.positions[index]]["_index"])
        step = ClosedLoopStep(
            time_s, index, record_index, forward, lateral, heading, cte, angle, throttle, bool(lost)
        )
        steps.append(step)
        if on_step is not None:
            on_step(frame, step)
        if lost:  # the safety driver puts the car back on the recorded path, a little ahead
            index = min(index + 1, len(path) - 1)
            state, last_progress_s = path.state_at(index), time_s
            if config.speed == "model":  # set down stopped, as the simulator does
                state = VehicleState(state.x, state.y, state.yaw, 0.0)
            continue
        if config.speed == "recorded":
            speed = float(path.speeds[index])
            state = VehicleState(state.x, state.y, state.yaw, speed)
            throttle = speed / vehicle.max_speed_mps
        state = vehicle.step(state, angle, throttle, dt)
    if not steps:
        raise ValueError(f"{tub.path}: the recorded path is too short to replay")
    return ClosedLoopResult(steps, path, config, dt, frames.problems)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
