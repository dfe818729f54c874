"""The camera's lens: radial distortion in OpenCV's model, for pixel points and whole images.

A Donkey car's wide-angle lens bends straight lines towards the image centre (barrel
distortion). The model is OpenCV's: a pinhole camera (`CameraModel.intrinsics()`, principal
point at the image centre) whose normalised image points (x, y) move radially to
(x, y) * (1 + k1 r^2 + k2 r^4), r^2 = x^2 + y^2, before they become pixels. No tangential
terms: a fixed M12 lens is centred well enough at 160x120.

"Pinhole pixels" are where a point would land without the lens, "lens pixels" where it does.
`distort_points` / `undistort_points` map points between the two; `distort_image` /
`undistort_image` map whole frames with `cv2.remap` tables that are built once per camera.
The simulator renders a pinhole view a little larger than the frame (`pinhole_view`) and
distorts it into the frame; the replay warp undistorts a recorded frame, moves it as a
pinhole image, and distorts it back.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # sim.camera imports this module
    from sim.camera import CameraModel

_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9)


def radial_scale(k1: float, k2: float, r: np.ndarray) -> np.ndarray:
    """The factor a normalised radius r is multiplied by: 1 + k1 r^2 + k2 r^4."""
    r2 = np.square(r)
    return 1.0 + k1 * r2 + k2 * r2 * r2


def monotonic_radius(k1: float, k2: float) -> float:
    """The largest normalised pinhole radius the model maps one-to-one (where the lens
    radius r (1 + k1 r^2 + k2 r^4) stops growing); infinity when it never stops."""
    # d/dr [r + k1 r^3 + k2 r^5] = 1 + 3 k1 s + 5 k2 s^2 with s = r^2: its smallest positive root.
    roots = np.roots([5.0 * k2, 3.0 * k1, 1.0]) if k2 != 0 else np.array([-1.0 / (3.0 * k1)] if k1 else [])
    positive = [s.real for s in np.atleast_1d(roots) if abs(s.imag) < 1e-12 and s.real > 0]
    return math.sqrt(min(positive)) if positive else math.inf


def lens_reach(k1: float, k2: float) -> float:
    """The largest normalised radius the lens frame can show: where the mapping from
    pinhole radius to lens radius stops growing; infinity when it never stops."""
    limit = monotonic_radius(k1, k2)
    return math.inf if math.isinf(limit) else limit * float(radial_scale(k1, k2, np.array(limit)))


def distortion_coefficients(camera: CameraModel) -> np.ndarray:
    """OpenCV's distortion vector (k1, k2, p1, p2, k3) of the camera."""
    return np.array([camera.k1, camera.k2, 0.0, 0.0, 0.0])


def distort_points(camera: CameraModel, pixels: np.ndarray) -> np.ndarray:
    """Pinhole pixels (N, 2) -> lens pixels (N, 2) of the same camera."""
    points = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    if not camera.has_lens or len(points) == 0:
        return points.copy()
    k = camera.intrinsics()
    normalised = np.column_stack([(points - k[:2, 2]) / np.diag(k)[:2], np.ones(len(points))])
    projected, _ = cv2.projectPoints(normalised, np.zeros(3), np.zeros(3), k, distortion_coefficients(camera))
    return projected.reshape(-1, 2)


def undistort_points(camera: CameraModel, pixels: np.ndarray) -> np.ndarray:
    """Lens pixels (N, 2) -> pinhole pixels (N, 2) of the same camera (OpenCV's iterative
    inverse, run to convergence; exact to well under 0.01 px inside the frame)."""
    points = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    if not camera.has_lens or len(points) == 0:
        return points.reshape(-1, 2).copy()
    k = camera.intrinsics()
    return cv2.undistortPoints(
        points, k, distortion_coefficients(camera), P=k, criteria=_UNDISTORT_CRITERIA
    ).reshape(-1, 2)


def pinhole_view(camera: CameraModel, margin_px: int = 2) -> CameraModel:
    """The lens-free camera with the same focal length and principal point, just large
    enough to hold everything the lens frame shows (plus a margin for interpolation)."""
    if not camera.has_lens:
        return camera
    w, h = camera.width, camera.height
    border = np.concatenate(
        [
            np.column_stack([np.linspace(0, w - 1, 33), np.zeros(33)]),
            np.column_stack([np.linspace(0, w - 1, 33), np.full(33, h - 1.0)]),
            np.column_stack([np.zeros(25), np.linspace(0, h - 1, 25)]),
            np.column_stack([np.full(25, w - 1.0), np.linspace(0, h - 1, 25)]),
        ]
    )
    reach = np.abs(undistort_points(camera, border) - ((w - 1) / 2.0, (h - 1) / 2.0)).max(axis=0)
    # Same parity as the frame, so both principal points sit on the same half-pixel grid.
    width = w + 2 * (math.ceil(reach[0] - (w - 1) / 2.0) + margin_px)
    height = h + 2 * (math.ceil(reach[1] - (h - 1) / 2.0) + margin_px)
    fov = math.degrees(2.0 * math.atan((width / 2.0) / camera.focal_px))
    return camera.replace(width=width, height=height, fov_deg=fov, k1=0.0, k2=0.0)


@lru_cache(maxsize=16)
def _lens_from_pinhole_maps(camera: CameraModel, view: CameraModel) -> tuple[np.ndarray, np.ndarray]:
    """For each lens pixel of `camera`, where it lies in the pinhole image `view` (float32 maps)."""
    columns, rows = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    lens = np.column_stack([columns.ravel(), rows.ravel()]).astype(np.float64)
    pinhole = undistort_points(camera, lens) + (view.principal_point - camera.principal_point)
    maps = pinhole.reshape(camera.height, camera.width, 2).astype(np.float32)
    return cv2.convertMaps(maps[..., 0], maps[..., 1], cv2.CV_16SC2)


@lru_cache(maxsize=16)
def _pinhole_from_lens_maps(camera: CameraModel, view: CameraModel) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel of the pinhole image `view`, where it lies in `camera`'s lens frame."""
    k = camera.intrinsics()
    return cv2.initUndistortRectifyMap(
        k, distortion_coefficients(camera), None, view.intrinsics(), (view.width, view.height), cv2.CV_16SC2
    )


def distort_image(
    camera: CameraModel,
    pinhole_image: np.ndarray,
    view: CameraModel | None = None,
    dst: np.ndarray | None = None,
) -> np.ndarray:
    """The lens frame (camera.height, camera.width) of an image taken by the pinhole camera
    `view` (default: `pinhole_view(camera)`, which covers the whole frame)."""
    view = pinhole_view(camera) if view is None else view
    _check_size(pinhole_image, view, "pinhole image")
    map1, map2 = _lens_from_pinhole_maps(camera, view)
    return cv2.remap(pinhole_image, map1, map2, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)


def undistort_image(
    camera: CameraModel, lens_image: np.ndarray, view: CameraModel | None = None
) -> np.ndarray:
    """The pinhole image `view` (default: the same size and focal length as `camera`, i.e. the
    frame's centre without the lens) of a lens frame taken by `camera`."""
    view = camera.replace(k1=0.0, k2=0.0) if view is None else view
    _check_size(lens_image, camera, "lens frame")
    map1, map2 = _pinhole_from_lens_maps(camera, view)
    return cv2.remap(lens_image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _check_size(image: np.ndarray, camera: CameraModel, what: str) -> None:
    if image.shape[:2] != (camera.height, camera.width):
        size = f"{image.shape[1]}x{image.shape[0]}"
        raise ValueError(f"{what} is {size} but the camera model is {camera.width}x{camera.height}")
