"""Where the recorded car went, from its own pictures: visual odometry on a flat floor.

A real tub records what the driver commanded, not where the car went. Dead reckoning
those commands needs the car's top speed and steering scale, and its errors grow without
bound; the pictures themselves show how the car moved between two frames. Two parts of
the picture answer two questions:

- **How far the car moved** (forward and sideways): the floor. Each frame's floor below
  the horizon is seen from above (`FloorView`: a metric bird's-eye view in the car's frame,
  the lens undone), and two consecutive views differ by the car's motion. The view keeps
  the tape (yellow and white top-hats: bright, narrow marks) and drops the smooth floor,
  whose lit streaks are reflections of the lights: they ride along with the camera, so
  OpenCV's ECC alignment is run once, the pixels that a camera-fixed pattern explains
  better than the floor's motion are masked out, and it is run again.
- **How far the car turned**: the far scene above the horizon (`FarScene`). Far away, only
  the turn moves it, sideways by a known number of pixels per radian (phase correlation
  of consecutive undistorted frames). On the floor alone a turn is poorly told from a
  sideways shift (a tape line looks the same turned a little or moved a little): on the
  real tub the floor-only estimate closed a lap at 317 degrees, the far scene at 357.
  Where the far scene is not usable (low correlation, an implausible turn, no room above
  the horizon), the floor's own rigid alignment (ECC, Euclidean) gives the turn.

A frame identical to the one before (the camera delivered the same picture twice) is no
motion. A step that neither part can measure is marked unreliable, for the caller's
fallback (dead reckoning in `evaluation.replay`).

Car frame: x forward from the rear axle, y left, yaw counter-clockwise, as `sim.camera`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from sim.camera import CameraModel
from sim.lens import distort_points, undistort_image, undistort_points

# ECC: a few dozen iterations from a good guess; the floor views are small.
_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
_SAME_PICTURE = 1.0  # mean absolute grey difference below which two frames are one picture
_TAPE_KERNEL_PX = 31  # top-hat wider than any tape at 160 px across (scaled with the width)


@dataclass(frozen=True)
class Motion:
    """The car's motion from one frame to the next, in the first frame's car frame."""

    forward_m: float
    left_m: float
    turn_rad: float  # + = turned left
    reliable: bool  # False: neither the floor nor the far scene could measure it
    turn_source: str  # "far scene", "floor", "same picture" or "none"
    floor_match: float  # ECC correlation of the floor views after the motion (1 = identical)


def compose(pose: np.ndarray, motion: Sequence[float]) -> np.ndarray:
    """The pose (x, y, yaw) after moving by (forward, left, turn) in its own frame."""
    x, y, yaw = pose
    forward, left, turn = motion
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([x + c * forward - s * left, y + s * forward + c * left, yaw + turn])


class FloorView:
    """A metric bird's-eye view of the floor in the car's frame, from a lens frame.

    Pixel (column, row) shows the floor point x = far_m - row * resolution_m (forward),
    y = half_width_m - column * resolution_m (left); `valid` marks pixels the camera sees
    (below the horizon, inside the frame). One `cv2.remap` per frame, tables built once.
    """

    def __init__(
        self,
        camera: CameraModel,
        near_m: float | None = None,
        reach_m: float = 1.4,
        half_width_m: float = 0.8,
        resolution_m: float = 0.01,
    ) -> None:
        self.camera = camera
        self.near_m = _nearest_floor_m(camera) if near_m is None else near_m
        self.far_m = camera.forward_m + reach_m
        self.half_width_m = half_width_m
        self.resolution_m = resolution_m
        self.rows = int(round((self.far_m - self.near_m) / resolution_m))
        self.cols = int(round(2 * half_width_m / resolution_m))
        columns, rows = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        ground = np.column_stack(
            [self.far_m - rows.ravel() * resolution_m, half_width_m - columns.ravel() * resolution_m]
        )
        pinhole = camera.project(ground)
        lens = distort_points(camera, np.nan_to_num(pinhole, nan=-1e6))
        seen = (
            (pinhole[:, 1] > camera.horizon_row + 4)
            & (lens[:, 0] >= 0)
            & (lens[:, 0] <= camera.width - 1)
            & (lens[:, 1] >= 0)
            & (lens[:, 1] <= camera.height - 1)
        )
        self._map_x = lens[:, 0].reshape(self.rows, self.cols).astype(np.float32)
        self._map_y = lens[:, 1].reshape(self.rows, self.cols).astype(np.float32)
        # Away from the edges: the blur and the warp would mix in the unseen border.
        self.valid = cv2.erode(seen.reshape(self.rows, self.cols).astype(np.uint8), np.ones((5, 5), np.uint8))
        # Floor (x, y) -> view pixel (column, row) = scale @ (x, y) + offset.
        self._scale = np.array([[0.0, -1.0], [-1.0, 0.0]]) / resolution_m
        self._offset = np.array([half_width_m, self.far_m]) / resolution_m
        kernel = max(3, int(round(_TAPE_KERNEL_PX * camera.width / 160)) | 1)
        self._tape_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))

    def tape(self, frame: np.ndarray) -> np.ndarray:
        """(rows, cols) float32: how much tape each floor pixel shows (yellow counts double).

        Top-hats of yellowness ((R + G) / 2 - B) and brightness keep marks narrower than
        the kernel and drop the smooth floor; a light blur widens ECC's reach.
        """
        rgb = frame.astype(np.float32)
        yellowness = np.clip((rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2], 0, 255).astype(np.uint8)
        brightness = frame.max(axis=2)
        yellow = cv2.morphologyEx(yellowness, cv2.MORPH_TOPHAT, self._tape_kernel).astype(np.float32)
        bright = cv2.morphologyEx(brightness, cv2.MORPH_TOPHAT, self._tape_kernel).astype(np.float32)
        marks = np.clip(2 * yellow, 0, 255) + np.clip(bright - 20, 0, 255)
        view = cv2.remap(marks, self._map_x, self._map_y, cv2.INTER_LINEAR)
        return cv2.GaussianBlur(view, (0, 0), 0.015 / self.resolution_m)

    def warp_matrix(self, motion: Sequence[float]) -> np.ndarray:
        """2x3 float32: a pixel of the next view -> the same floor point's pixel in this view,
        for the car moving by (forward, left, turn)."""
        forward, left, turn = motion
        rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
        matrix = self._scale @ rotation @ np.linalg.inv(self._scale)
        shift = self._scale @ np.array([forward, left]) + self._offset - matrix @ self._offset
        return np.column_stack([matrix, shift]).astype(np.float32)

    def motion_of(self, warp: np.ndarray) -> tuple[float, float, float]:
        """The car motion (forward, left, turn) of a rigid 2x3 view warp (`warp_matrix`'s inverse)."""
        inverse = np.linalg.inv(self._scale)
        rotation = inverse @ warp[:, :2] @ self._scale
        shift = inverse @ (warp[:, :2] @ self._offset + warp[:, 2] - self._offset)
        return float(shift[0]), float(shift[1]), math.atan2(rotation[1, 0], rotation[0, 0])

    def resample(self, view: np.ndarray, warp: np.ndarray) -> np.ndarray:
        """The previous view seen through `warp` (next-view pixel -> previous-view pixel)."""
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(view, warp, (self.cols, self.rows), flags=flags)


class FarScene:
    """The room above the horizon, undistorted: far away, it moves sideways with the car's
    turn only, by f / cos(pitch) pixels per radian (the measure `tubcar calibrate-camera`
    fits the focal length with, so a lap of a calibrated tub turns by 360 degrees)."""

    def __init__(self, camera: CameraModel, band_px: int = 24, min_response: float = 0.3) -> None:
        self.camera = camera
        horizon = camera.horizon_row
        self.rows = slice(max(0, int(horizon) - band_px), max(0, int(horizon) - 1))
        self.columns = slice(camera.width // 4, 3 * camera.width // 4)
        self.usable = self.rows.stop - self.rows.start >= 8
        self.px_per_rad = camera.focal_px / math.cos(math.radians(camera.pitch_deg))
        self.min_response = min_response
        self.max_turn_rad = math.radians(12.0)  # more in 1/20 s is a failed correlation
        height, width = self.rows.stop - self.rows.start, self.columns.stop - self.columns.start
        self._window = cv2.createHanningWindow((width, height), cv2.CV_32F) if self.usable else None

    def view(self, frame: np.ndarray) -> np.ndarray | None:
        if not self.usable:
            return None
        grey = cv2.cvtColor(undistort_image(self.camera, frame), cv2.COLOR_RGB2GRAY)
        return grey[self.rows, self.columns].astype(np.float32)

    def turn(self, before: np.ndarray | None, after: np.ndarray | None) -> float | None:
        """The turn (rad, + = left) between two views, or None when the correlation fails."""
        if before is None or after is None:
            return None
        (shift, _), response = cv2.phaseCorrelate(before, after, self._window)
        turn = shift / self.px_per_rad  # the scene moves right when the car turns left
        if response < self.min_response or abs(turn) > self.max_turn_rad:
            return None
        return turn


class VisualOdometry:
    """Frame-to-frame motion of the car from its camera frames (see the module docstring).

    `max_step_m` bounds a plausible step between two frames (4 m/s at 20 Hz by default):
    a longer or backwards alignment is a failed one.
    """

    def __init__(self, camera: CameraModel, max_step_m: float = 0.2) -> None:
        self.floor = FloorView(camera)
        self.far = FarScene(camera)
        self.max_step_m = max_step_m
        self.good_match = 0.8  # ECC correlation of a step that needs no second guess

    def measure(
        self,
        frames: Iterable[np.ndarray | None],
        progress: Callable[[Iterable], Iterable] = lambda items: items,
    ) -> list[Motion]:
        """The motions between consecutive frames ((N - 1) of them for N frames); the
        steps into and out of a missing frame (None: it did not decode) are unreliable."""
        motions: list[Motion] = []
        previous, first = None, True
        for frame in progress(frames):
            if not first and (frame is None or previous is None):
                motions.append(Motion(0.0, 0.0, 0.0, False, "none", 0.0))
            first = False
            current = None if frame is None else (frame, self.floor.tape(frame), self.far.view(frame))
            if previous is not None and current is not None:
                guesses = [(m.forward_m, m.left_m) for m in motions[-1:] if m.reliable]
                recent = [m.forward_m for m in motions[-20:] if m.reliable and m.forward_m > 0]
                typical = float(np.median(recent)) if recent else 0.05
                motions.append(self.step(previous, current, [*guesses, (typical, 0.0), (2 * typical, 0.0)]))
            previous = current
        return motions

    def step(
        self,
        before: tuple[np.ndarray, np.ndarray, np.ndarray | None],
        after: tuple[np.ndarray, np.ndarray, np.ndarray | None],
        guesses: Sequence[tuple[float, float]],
    ) -> Motion:
        """The motion between two frames given as (frame, floor tape view, far view)."""
        if np.abs(after[0].astype(np.int16) - before[0]).mean() < _SAME_PICTURE:
            return Motion(0.0, 0.0, 0.0, True, "same picture", 1.0)
        turn = self.far.turn(before[2], after[2])
        source = "far scene"
        if turn is None:
            turn, source = self._floor_turn(before[1], after[1], guesses), "floor"
        if turn is None:
            return Motion(0.0, 0.0, 0.0, False, "none", 0.0)
        best = None
        for forward, left in guesses:  # the likeliest first; the others only when it fails
            found = self._shift(before[1], after[1], (forward, left, turn))
            if found is not None and (best is None or found[1] > best[1]):
                best = found
            if best is not None and best[1] >= self.good_match:
                break
        if best is None:
            return Motion(0.0, 0.0, turn, False, source, 0.0)
        (forward, left), match = best
        return Motion(forward, left, turn, True, source, match)

    def _plausible(self, forward: float, left: float) -> bool:
        return -0.01 <= forward <= self.max_step_m and abs(left) <= 0.5 * abs(forward) + 0.01

    def _shift(
        self, before: np.ndarray, after: np.ndarray, guess: tuple[float, float, float]
    ) -> tuple[tuple[float, float], float] | None:
        """(forward, left) and the ECC correlation, the turn held fixed; reflections masked."""
        floor, turn = self.floor, guess[2]
        # Turn the earlier view first: what is left between the two is a translation t,
        # the car's step (forward, left) = R(turn) t.
        turned = floor.warp_matrix((0.0, 0.0, turn))
        before_turned, valid = floor.resample(before, turned), floor.resample(floor.valid, turned)
        rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
        shift, mask, match = rotation.T @ np.array(guess[:2]), valid, 0.0
        for _ in range(2):  # align; mask what the floor's motion does not explain; align again
            warp = floor.warp_matrix((shift[0], shift[1], 0.0))
            try:
                match, warp = cv2.findTransformECC(
                    after, before_turned, warp, cv2.MOTION_TRANSLATION, _ECC_CRITERIA, mask, 1
                )
            except cv2.error:  # the alignment did not converge
                return None
            shift = np.array(floor.motion_of(warp)[:2])
            mask = valid & ~self._camera_fixed(before_turned, after, warp)
        forward, left = rotation @ shift
        if not self._plausible(forward, left):
            return None
        return (float(forward), float(left)), float(match)

    def _camera_fixed(self, before: np.ndarray, after: np.ndarray, warp: np.ndarray) -> np.ndarray:
        """uint8 mask (earlier view's pixels) of what rides along with the camera: marks that
        stay where they were (lit streaks) explain the later view better than the floor's
        motion `warp` does. Both views are already turned alike."""
        floor = self.floor
        floor_error = cv2.GaussianBlur(np.abs(after - floor.resample(before, warp)), (0, 0), 2)
        fixed_error = cv2.GaussianBlur(np.abs(after - before), (0, 0), 2)
        streaks = ((fixed_error < 0.7 * floor_error) & (after > 15)).astype(np.uint8)
        streaks = cv2.dilate(streaks, np.ones((5, 5), np.uint8))
        # Mask the streaks where ECC compares them: at the later view's streak moved by the
        # warp, and at the earlier view's own (the same place: they ride along).
        return floor.resample(streaks, cv2.invertAffineTransform(warp)) | streaks

    def _floor_turn(
        self, before: np.ndarray, after: np.ndarray, guesses: Sequence[tuple[float, float]]
    ) -> float | None:
        """The turn from the floor alone (rigid ECC), the best of the guesses, or None."""
        best = None
        for forward, left in guesses:
            warp = self.floor.warp_matrix((forward, left, 0.0))
            try:
                match, warp = cv2.findTransformECC(
                    after, before, warp, cv2.MOTION_EUCLIDEAN, _ECC_CRITERIA, self.floor.valid, 1
                )
            except cv2.error:
                continue
            forward_m, left_m, turn = self.floor.motion_of(warp)
            if self._plausible(forward_m, left_m) and (best is None or match > best[0]):
                best = (match, turn)
        return None if best is None else best[1]


def _nearest_floor_m(camera: CameraModel) -> float:
    """How far ahead of the rear axle the bottom centre of the frame sees the floor."""
    pixel = np.array([[(camera.width - 1) / 2.0, camera.height - 1.0]])
    point = camera.image_to_ground() @ np.array([*undistort_points(camera, pixel)[0], 1.0])
    return float(point[0] / point[2])
