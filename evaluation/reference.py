"""Reference pilots: classical camera pilots of known behaviour, no learning involved.

They calibrate evaluations: a method that scores models (closed-loop replay, the
simulator) must rank a pilot that follows the line above one with a steering trim, both
far above one that steers away from the line, and a pilot that never steers low on any
track with curves. Each has the car's pilot interface, `run(frame) -> (angle, throttle)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from sim.camera import CameraModel
from sim.lens import undistort_points
from sim.tape import tape_masks
from sim.vehicle import VehicleModel

_NEAR_M = 0.5  # how far ahead of the camera the driver's offset from the line is measured
_TRACK_M = 0.15  # yellow further than this from the line being followed is another line
_MIN_POINTS = 8


class Steering(Protocol):
    """What a pilot needs of the car's steering: the command that drives a curvature
    (`sim.vehicle.VehicleModel`, or a replay's fitted `evaluation.steering.SteeringResponse`)."""

    def angle_for_curvature(self, curvature: float) -> float: ...


class StraightPilot:
    """Never steers: on a track with curves it must need help, whatever replays it."""

    def __init__(self, throttle: float = 0.3) -> None:
        self.throttle = throttle

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        return 0.0, self.throttle


class YellowLinePilot:
    """The classical lane-marking follower: finds the yellow line on the floor and drives
    pure pursuit to a point `lookahead_m` ahead, `offset_m` to the right of it (0: on the
    line; a driver keeping the right lane of a two-lane track has it about a quarter of
    the road on the left: `lane_offset_m` measures it on recorded frames).

    The line: yellow tape pixels (`sim.tape.tape_masks`) below the horizon, undistorted and
    put on the floor with the camera model, fitted by a parabola in the car's frame.
    `sign=-1` steers away from where it should; `bias` adds a steering trim.
    """

    def __init__(
        self,
        gain: float = 1.0,
        bias: float = 0.0,
        sign: float = 1.0,
        throttle: float = 0.3,
        offset_m: float = 0.0,
        lookahead_m: float = 0.8,
        camera: CameraModel = CameraModel(),
        vehicle: Steering = VehicleModel(),
    ) -> None:
        self.gain, self.bias, self.sign, self.throttle = gain, bias, sign, throttle
        self.offset_m, self.lookahead_m = offset_m, lookahead_m
        self.camera, self.vehicle = camera, vehicle
        self._steer = 0.0  # the line lost from view: keep the last steering
        self._line: np.ndarray | None = None

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        line = yellow_line(frame, self.camera, prior=self._line)
        if line is not None:
            ahead = self.camera.forward_m + self.lookahead_m
            left = float(np.polyval(line, ahead)) - self.offset_m
            curvature = 2.0 * left / (ahead**2 + left**2)  # pure pursuit from the rear axle
            self._steer = self.vehicle.angle_for_curvature(curvature)
        self._line = line
        angle = self.sign * self.gain * self._steer + self.bias
        return float(np.clip(angle, -1.0, 1.0)), self.throttle


def yellow_line(frame: np.ndarray, camera: CameraModel, prior: np.ndarray | None = None) -> np.ndarray | None:
    """The yellow line on the floor as polynomial coefficients of y(x) (car frame, metres;
    `np.polyval`), fitted to the yellow pixels 0.1-1.4 m ahead of the camera; None when
    too few. Yellow seen elsewhere (the track's other side) is left out: points far from
    `prior` (the line in the frame before), then points far from a first fit."""
    points = _yellow_floor_points(frame, camera)
    if prior is not None:
        near_prior = np.abs(points[:, 1] - np.polyval(prior, points[:, 0])) < _TRACK_M
        if near_prior.sum() >= _MIN_POINTS:
            points = points[near_prior]
    for _ in range(2):  # fit; drop what lies off the line; fit again
        if len(points) < _MIN_POINTS:
            return None
        x, y = points[:, 0], points[:, 1]
        degree = 2 if np.ptp(x) > 0.4 and len(points) >= 20 else 1 if np.ptp(x) > 0.1 else 0
        line = np.polyfit(x, y, degree)
        points = points[np.abs(y - np.polyval(line, x)) < _TRACK_M / 2]
    return line


def _yellow_floor_points(frame: np.ndarray, camera: CameraModel) -> np.ndarray:
    """(N, 2) floor points (x ahead of the rear axle, y left) of the yellow pixels."""
    top = int(np.clip(np.ceil(camera.horizon_row) + 4, 0, frame.shape[0] - 1))
    rows, columns = np.nonzero(tape_masks(frame).yellow[top:])
    if len(rows) == 0:
        return np.empty((0, 2))
    lens = np.column_stack([columns, rows + top]).astype(np.float64)[::2]  # every other pixel is enough
    pinhole = np.column_stack([undistort_points(camera, lens), np.ones(len(lens))])
    floor = pinhole @ camera.image_to_ground().T
    ahead = floor[:, 2] > 1e-9
    points = floor[ahead, :2] / floor[ahead, 2:3]
    near = camera.forward_m + 0.1
    keep = (points[:, 0] > near) & (points[:, 0] < camera.forward_m + 1.4) & (np.abs(points[:, 1]) < 1.0)
    return points[keep]


def lane_offset_m(frames: Iterable[np.ndarray], camera: CameraModel = CameraModel()) -> float:
    """How far right of the yellow line the driver of these frames kept the car: the
    median over the straights (a nearly straight line ahead) of the line's lateral
    position half a metre ahead (the `offset_m` that sets a `YellowLinePilot` for the
    driver's lane); 0 when no frame shows the line."""
    ahead = camera.forward_m + _NEAR_M
    lines = [line for line in (yellow_line(f, camera) for f in frames) if line is not None]
    straight = [line for line in lines if len(line) < 3 or abs(line[0]) < 0.2]
    offsets = [float(np.polyval(line, ahead)) for line in straight or lines]
    return float(np.median(offsets)) if offsets else 0.0
