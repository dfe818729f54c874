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

The recorded path (`evaluation.path`): a simulator tub's recorded pose; a real tub's from
its own pictures (visual odometry, `evaluation.odometry`), with dead reckoning of the labels
as its fallback and cross-check. The simulated car steers as the recorded car did
(`evaluation.steering`: on a real tub fitted on its own drive: how far each command turned
it, how late, how gradually), so a pilot that steers as the driver did drives the recorded
path, and one that steers less runs wide, as it would on the car.

What the pilot sees (`evaluation.warp`): the nearest recorded frame, warped through the
lens to the car's pose; what that frame never saw comes from its neighbours.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE
from car.contracts import FramePolicy
from car.tub import Tub, TubProblem, TubRecordError
from evaluation.path import DEFAULT_RATE_HZ, PATH_SOURCES, RecordedPath, recorded_path
from evaluation.scoring import autonomy
from evaluation.warp import FILLS, warper
from sim.camera import CameraModel
from sim.simulation import OFF_TRACK_MARGIN_M
from sim.vehicle import VehicleModel, VehicleState


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


# ---------------------------------------------------------------------------- closed loop
@dataclass(frozen=True)
class ClosedLoopConfig:
    """When the safety driver takes over, and how the simulated car is driven."""

    # |lateral offset from the recorded path| that ends autonomy. 0.3 m: on the Donkey tub's
    # track (lanes 0.67 m, the driver 0.16 m right of the centre line) the car has crossed
    # the centre line entirely; and the pictures there still show real floor in 93% of the
    # view (held-out block 800-999; `warp_coverage`, printed by every closed-loop replay);
    # a model steers on them within 0.04 of the true view (tubcar replay-validation, simulator).
    max_offset_m: float = 0.3
    # Simulator tubs: when set, the car is off the road when |recorded CTE + offset| exceeds
    # this (the built-in simulator's rule: half the road width plus its margin) instead.
    road_half_width_m: float | None = None
    max_heading_deg: float = 45.0  # beyond this the warp is meaningless: the car is lost
    speed: str = "recorded"  # "recorded": the path's speed (PilotNet); "model": pilot throttle
    stall_s: float = 3.0  # with speed="model": no progress this long is an intervention
    fill: str = "neighbours"  # what fills the warped frames where the recorded camera saw nothing
    path: str = "auto"  # evaluation.path: "auto", "pictures" (ignore a recorded pose), "labels"
    neighbours: tuple[int, ...] = (-1, -2, -3, -5, -8, 1, 2, 3)  # frames that fill, nearest first

    def __post_init__(self) -> None:
        if self.speed not in ("recorded", "model"):
            raise ValueError(f"speed must be 'recorded' or 'model', got {self.speed!r}")
        if self.max_offset_m <= 0 or not 0 < self.max_heading_deg < 90:
            raise ValueError("max_offset_m must be > 0 and max_heading_deg in (0, 90)")
        if self.road_half_width_m is not None and self.road_half_width_m <= 0:
            raise ValueError("road_half_width_m must be > 0")
        if self.fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {self.fill!r}")
        if self.path not in PATH_SOURCES:
            raise ValueError(f"path must be one of {PATH_SOURCES}, got {self.path!r}")


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

    def metrics(self) -> dict[str, Any]:
        offsets = np.abs([step.lateral_m for step in self.steps])
        headings = np.degrees(np.abs([step.heading_rad for step in self.steps]))
        ctes = np.abs([step.cte_m for step in self.steps if step.cte_m is not None])
        path = self.path
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
            "records": len(path),
            "skipped_frames": len(self.problems),
            "path": path.source,
            "path_m": round(float(path.arc_m[-1]), 3),
            "path_check": path.check.to_dict() if path.check is not None else None,
            "steering": path.steering.to_dict(),
            "speed": self.config.speed,
            "recorded_speed_mps": round(float(np.median(path.speeds)), 3),
            "intervention_rule": "road edge" if self._uses_road(path) else "offset from path",
            "max_heading_deg": self.config.max_heading_deg,
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


@dataclass
class ReplayTrack:
    """What every closed-loop run on one stretch of a tub shares: its records and the path
    (worked out once: from the pictures that takes a while), for several pilots."""

    tub: Tub
    records: list[dict[str, Any]]  # the usable records of the stretch
    path: RecordedPath  # where the car moved (records where it stood still dropped)


def replay_track(
    tub: Tub,
    camera: CameraModel,
    vehicle: VehicleModel = VehicleModel(),
    config: ClosedLoopConfig = ClosedLoopConfig(),
    rate_hz: float = DEFAULT_RATE_HZ,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> ReplayTrack:
    """The records and recorded path of the tub (or of the records `keep` selects)."""
    records = usable_records(tub, keep)
    if len(records) < 2:
        raise ValueError(
            f"{tub.path}: closed-loop replay needs at least 2 usable records, found {len(records)}"
        )
    path = recorded_path(
        records,
        vehicle,
        rate_hz,
        source=config.path,
        frames=lambda: (_decoded(tub, r, camera) for r in records),
        camera=camera,
        progress=progress,
    ).moving()
    if len(path) < 2:
        raise ValueError(f"{tub.path}: the car never moves in this tub; there is no path to replay")
    return ReplayTrack(tub, records, path)


def closed_loop(
    tub: Tub | ReplayTrack,
    pilot: FramePolicy,
    camera: CameraModel,
    vehicle: VehicleModel = VehicleModel(),
    config: ClosedLoopConfig = ClosedLoopConfig(),
    rate_hz: float = DEFAULT_RATE_HZ,
    on_step: Callable[[np.ndarray, ClosedLoopStep], None] | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> ClosedLoopResult:
    """Drive the pilot along the tub's recorded path, seeing warped recorded frames.

    Runs until the car reaches the last record. `tub` may be a `ReplayTrack` already
    worked out (several pilots on one stretch). `on_step(frame, step)` receives the frame
    the pilot saw at each step (e.g. to write a video or move a progress bar); `keep`
    selects the records that make the path (one contiguous stretch, e.g. a test block).
    The pilot's commands turn the car as the recorded commands did (`path.steering`).
    """
    track = tub if isinstance(tub, ReplayTrack) else replay_track(tub, camera, vehicle, config, rate_hz, keep)
    path, records = track.path, track.records
    frames = _FrameCache(track.tub, [records[p] for p in path.positions])
    if frames[0].shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"{track.tub.path}: frames are {frames[0].shape[1]}x{frames[0].shape[0]}, "
            f"the camera model is {camera.width}x{camera.height}"
        )
    warp = warper(camera)
    road = config.road_half_width_m if path.cte is not None else None
    max_heading = math.radians(config.max_heading_deg)
    dt = path.dt_s
    state, index, steps, last_progress_s = path.state_at(0), 0, [], 0.0
    servo = path.steering.servo(path.angles[:1])
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
        sources = [
            (frames[k], path.relative(k, state.x, state.y, state.yaw))
            for k in (index, *(index + n for n in config.neighbours))
            if 0 <= k < len(path)
        ]
        frame = warp.view(sources, fill=config.fill)
        angle, throttle = pilot.run(frame)
        off_road = (
            abs(cte) > road if road is not None and cte is not None else abs(lateral) > config.max_offset_m
        )
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
            # The driver's commands before this record are the ones on their way to the wheels.
            servo = path.steering.servo(path.angles[: max(index, 1)])
            continue
        curvature = servo.step(angle)
        if config.speed == "recorded":
            speed = float(path.speeds[index])
            state = VehicleState(state.x, state.y, state.yaw, speed)
            throttle = speed / vehicle.max_speed_mps
        state = vehicle.drive(state, curvature, throttle, dt)
    if not steps:
        raise ValueError(f"{track.tub.path}: the recorded path is too short to replay")
    return ClosedLoopResult(steps, path, config, dt, frames.problems)


def warp_coverage(
    track: ReplayTrack, camera: CameraModel, config: ClosedLoopConfig, every: int = 10
) -> float:
    """How much of the floor in view the recorded frames really saw (the rest is smooth
    fill) for a car `config.max_offset_m` beside the path, left and right, on every
    `every`-th record: how real the pictures are where the safety driver takes over."""
    path, warp, seen = track.path, warper(camera), []
    rows = np.arange(camera.height * camera.width) // camera.width
    floor = np.flatnonzero(rows > camera.horizon_row + 2)
    for index in range(0, len(path), every):
        x, y, yaw = path.poses[index]
        for side in (1.0, -1.0):
            left = side * config.max_offset_m
            car = (x - math.sin(yaw) * left, y + math.cos(yaw) * left, yaw)
            covered = np.zeros(len(floor), dtype=bool)
            for k in (index, *(index + n for n in config.neighbours)):
                if 0 <= k < len(path):
                    covered |= warp.source_pixels(path.relative(k, *car), floor)[:, 0] >= 0
            seen.append(covered.mean())
    return float(np.mean(seen))


def _decoded(tub: Tub, record: dict[str, Any], camera: CameraModel) -> np.ndarray | None:
    """The record's frame, or None when it does not decode or is not the camera's size
    (the path dead-reckons the steps into and out of it; the replay shows a neighbour)."""
    try:
        frame = tub.load_image(record)
    except TubRecordError:
        return None
    return frame if frame.shape[:2] == (camera.height, camera.width) else None
