"""Re-render recorded camera frames as if the car stood slightly off its recorded pose.

This is what lets a model drive closed-loop on *recorded* laps (NVIDIA's PilotNet
evaluation): when the model's own driving has moved the car 10 cm left and turned it
3 degrees, the nearest recorded frame is warped to show the world from there.

Geometry, per output pixel (one `cv2.remap` per source frame):
- the lens is undone (`sim.lens`: the frame's pixel -> where a pinhole camera sees it);
- below the horizon the world is a flat floor, so the floor seen from the new pose is a
  plane-induced homography of the recorded view (`sim.camera.view_change_homography`:
  exact for the floor and its markings, wrong only for things standing on it);
- above the horizon everything is far away, so only the heading change matters there (the
  rotation-only homography); both agree at the horizon, so the seam is smooth;
- the lens is applied again, so straight tape stays as the real lens bends it.

What the recorded camera never saw (the floor beside the car after a sideways move, the
side of the room after a turn) is taken from the neighbouring recorded frames: they saw it
from a moment earlier or later, and are warped to the same new pose and laid under the
first. Whatever no frame saw is filled smoothly from the nearest seen pixels (normalised
convolution: the floor's colour carries on without streaks, and no marking is invented).

Offsets are those of the new car pose in the recorded car's frame: forward (x), left (y),
and heading counter-clockwise (a turn to the left).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from sim.camera import CameraModel, view_change_homography
from sim.lens import monotonic_radius, undistort_points

FILLS = ("neighbours", "edge", "black")

Offsets = tuple[float, float, float]  # (forward m, left m, heading rad) of the new pose in the source's frame


class Warper:
    """Warps one camera's frames to nearby poses; per-camera tables are built once."""

    def __init__(self, camera: CameraModel) -> None:
        self.camera = camera
        columns, rows = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
        lens = np.column_stack([columns.ravel(), rows.ravel()]).astype(np.float64)
        pinhole = undistort_points(camera, lens)  # (H*W, 2): where each output pixel looks
        self._rays = np.column_stack([pinhole, np.ones(len(pinhole))]).astype(np.float32)  # (H*W, 3)
        self._below = (pinhole[:, 1] > camera.horizon_row)[:, None]  # (H*W, 1): floor, else far scene
        k = camera.intrinsics()
        self._focal, self._centre = np.float32(k[0, 0]), k[:2, 2].astype(np.float32)
        # Beyond this normalised radius the radial model folds back: such points are unseen.
        self._max_r2 = np.float32(min(monotonic_radius(camera.k1, camera.k2), 1e3) ** 2)

    def source_pixels(self, offsets: Offsets, where: np.ndarray | None = None) -> np.ndarray:
        """float32 (N, 2): for each pixel of the new view (all, or the flat indices
        `where`), the source frame's pixel that shows it; (-1, -1) where the source never
        saw it."""
        forward, lateral, heading = offsets
        floor = np.linalg.inv(view_change_homography(self.camera, forward, lateral, heading))
        far = np.linalg.inv(far_homography(self.camera, heading))
        rays, below = (self._rays, self._below) if where is None else (self._rays[where], self._below[where])
        points = np.where(below, rays @ floor.T.astype(np.float32), rays @ far.T.astype(np.float32))
        depth = points[:, 2]
        ahead = depth > 1e-6
        normalised = (points[:, :2] / np.where(ahead, depth, 1.0)[:, None] - self._centre) / self._focal
        r2 = np.square(normalised).sum(axis=1)
        scale = 1.0 + np.float32(self.camera.k1) * r2 + np.float32(self.camera.k2) * r2 * r2
        pixels = normalised * (scale * self._focal)[:, None] + self._centre
        seen = ahead & (r2 < self._max_r2)
        seen &= (pixels[:, 0] >= 0) & (pixels[:, 0] <= self.camera.width - 1)
        seen &= (pixels[:, 1] >= 0) & (pixels[:, 1] <= self.camera.height - 1)
        pixels[~seen] = -1.0
        return pixels

    def warp(self, frame: np.ndarray, offsets: Offsets) -> tuple[np.ndarray, np.ndarray]:
        """The frame seen from the new pose, and a bool mask (H, W) of the pixels it saw."""
        self._check(frame)
        pixels = self.source_pixels(offsets).reshape(self.camera.height, self.camera.width, 2)
        map_x, map_y = np.ascontiguousarray(pixels[..., 0]), np.ascontiguousarray(pixels[..., 1])
        image = cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.asarray(image), map_x >= 0

    def view(self, sources: Sequence[tuple[np.ndarray, Offsets]], fill: str = "neighbours") -> np.ndarray:
        """The new view from recorded frames, each with the new pose in its own car frame.

        The first source is the recorded frame nearest the new pose; with fill
        "neighbours" the others (nearest first) fill what it never saw, then the rest is
        filled smoothly ("edge" does only that; "black" leaves it black: for pictures).
        """
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        frame, offsets = sources[0]
        if offsets == (0.0, 0.0, 0.0):
            self._check(frame)
            return frame.copy()
        image, seen = self.warp(frame, offsets)
        if fill == "neighbours":
            flat, unseen = image.reshape(-1, 3), np.flatnonzero(~seen)
            for neighbour, neighbour_offsets in sources[1:]:
                if len(unseen) <= 0.002 * seen.size:  # a few pixels: the smooth fill does as well
                    break
                self._check(neighbour)
                pixels = self.source_pixels(neighbour_offsets, unseen)
                found = pixels[:, 0] >= 0
                if not found.any():
                    continue
                map_x, map_y = (np.ascontiguousarray(pixels[found][:, None, axis]) for axis in (0, 1))
                sampled = cv2.remap(neighbour, map_x, map_y, cv2.INTER_LINEAR)
                flat[unseen[found]] = sampled[:, 0]
                seen.flat[unseen[found]] = True
                unseen = unseen[~found]
        if fill == "black":
            image[~seen] = 0
            return image
        return fill_unseen(image, seen)

    def _check(self, frame: np.ndarray) -> None:
        if frame.shape[:2] != (self.camera.height, self.camera.width):
            raise ValueError(
                f"frame is {frame.shape[1]}x{frame.shape[0]} but the camera model is "
                f"{self.camera.width}x{self.camera.height}"
            )


@lru_cache(maxsize=8)
def warper(camera: CameraModel) -> Warper:
    """The (cached) warper of a camera."""
    return Warper(camera)


def warp_frame(
    frame: np.ndarray,
    camera: CameraModel,
    lateral_m: float,
    heading_rad: float,
    forward_m: float = 0.0,
    fill: str = "edge",
) -> np.ndarray:
    """One recorded RGB frame (H, W, 3) as seen from the car moved by the given offsets.

    lateral_m > 0: the car stands left of where the frame was recorded, so the floor
    ahead appears shifted right. heading_rad > 0: the car is turned left, so the whole
    scene appears shifted right. Returns a new uint8 frame of the same shape.
    """
    return warper(camera).view([(frame, (forward_m, lateral_m, heading_rad))], fill=fill)


def far_homography(camera: CameraModel, heading_rad: float) -> np.ndarray:
    """H (3, 3): recorded pinhole pixel -> new pinhole pixel for points at infinity (rotation only)."""
    recorded, _ = camera.world_to_camera(0.0, 0.0, 0.0)
    turned, _ = camera.world_to_camera(0.0, 0.0, heading_rad)
    k = camera.intrinsics()
    return k @ turned @ recorded.T @ np.linalg.inv(k)


def fill_unseen(image: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """`image` with the pixels outside `seen` filled from the seen ones nearby: normalised
    convolution at growing scales (on a quarter-size copy beyond the first: the fill is
    smooth anyway), so a gap takes the smooth colour of its surroundings."""
    if seen.all():
        return image
    height, width = seen.shape
    filled, todo = image.copy(), ~seen
    weight = seen.astype(np.float32)
    values = image.astype(np.float32) * weight[..., None]
    small = (max(1, width // 4), max(1, height // 4))
    small_weight = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    small_values = cv2.resize(values, small, interpolation=cv2.INTER_AREA)
    for sigma in (3.0, 8.0, 24.0, 64.0):
        if sigma == 3.0:
            spread = cv2.GaussianBlur(weight, (0, 0), sigma)
            colour = cv2.GaussianBlur(values, (0, 0), sigma)
        else:
            spread = cv2.resize(cv2.GaussianBlur(small_weight, (0, 0), sigma / 4), (width, height))
            colour = cv2.resize(cv2.GaussianBlur(small_values, (0, 0), sigma / 4), (width, height))
        colour = colour / np.maximum(spread, 1e-6)[..., None]
        ready = todo & (spread > 0.05)  # enough seen pixels within reach of this scale
        filled[ready] = np.clip(colour[ready], 0, 255).astype(np.uint8)
        todo &= ~ready
        if not todo.any():
            return filled
    filled[todo] = image[seen].mean(axis=0).astype(np.uint8) if seen.any() else 0
    return filled
