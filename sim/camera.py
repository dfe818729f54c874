"""The camera on the car, and the flat-ground geometry that renders (and warps) its view.

The camera sits `forward_m` ahead of the rear axle, `height_m` above the floor, looking
along the car's heading and pitched down by `pitch_deg`; `fov_deg` is the horizontal field
of view of its pinhole model, i.e. of the frame with the lens distortion removed
(`k1`, `k2`: see sim/lens.py; the lens itself sees wider). For points on the flat floor the
map from floor to pinhole image is a homography, so the simulator renders the ground with
one perspective warp of a top-down texture (then bends it through the lens), and the
replay tools can move a recorded frame to a nearby pose with the same geometry
(`ground_to_image` at two poses, composed). Every geometry method here is the pinhole's.

The defaults are the car config's `[camera]` defaults (car/config.py), which are the real
Donkey tub's camera as `tubcar calibrate-camera` measures it: the car, the simulator and
the replay share one camera.

Frames: world x east, y north, z up; car frame x forward, y left; camera frame x right,
y down, z forward (OpenCV). Image pixel (u, v): column, row, pixel centres at integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from car.config import CameraConfig
from sim.lens import lens_reach

_CONFIG = CameraConfig()  # the defaults below


@dataclass(frozen=True)
class CameraModel:
    """Mounting and optics of the car's camera. Defaults match the real Donkey tub's camera."""

    height_m: float = _CONFIG.height_m
    pitch_deg: float = _CONFIG.pitch_deg  # downwards
    fov_deg: float = _CONFIG.fov_deg  # horizontal, of the pinhole (undistorted) image
    width: int = _CONFIG.width
    height: int = _CONFIG.height
    forward_m: float = _CONFIG.forward_m  # ahead of the rear axle
    k1: float = _CONFIG.k1  # radial lens distortion (OpenCV); 0, 0 = a pinhole
    k2: float = _CONFIG.k2

    @classmethod
    def from_config(cls, camera: CameraConfig, **overrides: Any) -> CameraModel:
        """The camera a car config's `[camera]` section describes."""
        values = {f.name: getattr(camera, f.name) for f in fields(cls)}
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        if not 10.0 <= self.fov_deg <= 170.0:
            raise ValueError(
                f"CameraModel.fov_deg must be in [10, 170] for a pinhole camera, got {self.fov_deg}"
            )
        if not -10.0 <= self.pitch_deg < 80.0:
            raise ValueError(f"CameraModel.pitch_deg must be in [-10, 80), got {self.pitch_deg}")
        if self.height_m <= 0 or self.width < 8 or self.height < 8:
            raise ValueError("CameraModel needs a positive height_m and an image of at least 8x8")
        corner = math.hypot(self.width / 2.0, self.height / 2.0) / self.focal_px  # normalised, lens side
        if lens_reach(self.k1, self.k2) <= corner * 1.02:
            raise ValueError(
                f"CameraModel lens k1={self.k1}, k2={self.k2} folds the image over before its corners "
                "(the distortion must grow monotonically out to the corners)"
            )

    def replace(self, **changes: Any) -> CameraModel:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def has_lens(self) -> bool:
        return self.k1 != 0.0 or self.k2 != 0.0

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (square pixels)."""
        return (self.width / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)

    @property
    def principal_point(self) -> np.ndarray:
        """(u, v) of the optical axis: the image centre."""
        return np.array([(self.width - 1) / 2.0, (self.height - 1) / 2.0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of a rendered RGB frame."""
        return (self.height, self.width, 3)

    def intrinsics(self) -> np.ndarray:
        """3x3 pinhole matrix K (square pixels, principal point at the image centre)."""
        return intrinsics(self.width, self.height, self.fov_deg)

    @property
    def horizon_row(self) -> float:
        """Pinhole image row of the horizon (may be negative when the camera looks far down)."""
        focal = self.intrinsics()[1, 1]
        return (self.height - 1) / 2.0 - focal * math.tan(math.radians(self.pitch_deg))

    def world_to_camera(self, x: float, y: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """Rotation R (3x3) and camera centre C (3,) for the car's rear axle at (x, y, yaw):
        a world point P maps to camera coordinates R @ (P - C)."""
        pitch = math.radians(self.pitch_deg)
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        right = (sin_yaw, -cos_yaw, 0.0)
        forward = (cos_yaw * math.cos(pitch), sin_yaw * math.cos(pitch), -math.sin(pitch))
        down = np.cross(forward, right)
        rotation = np.array([right, down, forward])
        centre = np.array([x + self.forward_m * cos_yaw, y + self.forward_m * sin_yaw, self.height_m])
        return rotation, centre

    def ground_to_image(self, x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
        """3x3 homography from floor points (X, Y, 1), metres, to pixels (u, v, 1) ~.

        With the default pose (0, 0, 0) the floor coordinates are the car frame's
        (x forward from the rear axle, y left), which is what replay warps need.
        """
        rotation, centre = self.world_to_camera(x, y, yaw)
        extrinsic = np.column_stack([rotation[:, 0], rotation[:, 1], -rotation @ centre])  # z = 0 plane
        return self.intrinsics() @ extrinsic

    def image_to_ground(self, x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
        """Inverse of `ground_to_image`: pixels below the horizon -> floor points."""
        return np.linalg.inv(self.ground_to_image(x, y, yaw))

    def project(self, points_xy: np.ndarray, x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
        """Floor points (N, 2) -> pixels (N, 2); points behind the camera come back NaN."""
        points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        homogeneous = np.column_stack([points, np.ones(len(points))]) @ self.ground_to_image(x, y, yaw).T
        depth = homogeneous[:, 2:3]
        pixels = homogeneous[:, :2] / np.where(depth > 1e-9, depth, np.nan)
        return pixels


def intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """Pinhole matrix for an image of width x height and a horizontal field of view."""
    focal = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def view_change_homography(camera: CameraModel, dx: float, dy: float, dyaw: float) -> np.ndarray:
    """3x3 image homography that moves a frame's floor to a car displaced by (dx forward,
    dy left, dyaw CCW) in its own frame; exact for the floor, wrong for anything above it."""
    return camera.ground_to_image(dx, dy, dyaw) @ camera.image_to_ground()
