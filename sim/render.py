"""The camera view of a track from a car pose: a perspective warp plus a panorama slice.

Per frame the cost is one `cv2.warpPerspective` per level of detail over the floor rows,
one column gather from the room panorama above them and one saturating add of the floor
reflections: no Python loop over pixels. Far floor rows sample a smaller copy of the
texture (a two-level mipmap), so distant markings blur as in a real lens instead of
flickering. A camera with a lens is rendered as its pinhole view, a little larger than
the frame (`sim.lens.pinhole_view`), then bent into the frame by one `cv2.remap`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim.camera import CameraModel
from sim.effects import ImageEffects
from sim.lens import distort_image, pinhole_view
from sim.scene import TopDown, render_backdrop, render_topdown
from sim.track import Track
from sim.vehicle import VehicleState

_DETAIL_TEXELS = 2.0  # switch to the half-size texture when a pixel spans more texels


class Renderer:
    """Renders `camera`'s view on `track`; builds the track's textures once at creation."""

    def __init__(
        self,
        track: Track,
        camera: CameraModel,
        px_per_m: float = 100.0,
        effects: ImageEffects = ImageEffects(),
        seed: int = 0,
    ) -> None:
        self.track = track
        self.camera = camera
        self.effects = effects
        self._rng = np.random.default_rng(seed)
        self._gain = 1.0
        self._noise: np.ndarray | None = None  # sensor noise field, made on first use
        # Everything below is drawn in the pinhole view; the lens bends it into the frame.
        self._view = view = pinhole_view(camera)
        topdown = render_topdown(track, px_per_m)
        self._floor_rgba = (*topdown.floor_rgb, 0)
        self._floor_row = self._first_floor_row()
        # Everything is drawn as RGBA, whose 4-byte pixels copy and gather fastest; one
        # conversion to RGB at the end.
        self._rgba = np.zeros((view.height, view.width, 4), np.uint8)
        self._pixels = self._rgba.view(np.uint32)[:, :, 0]  # (H, W): one uint32 per pixel
        self._lens_rgba = np.zeros((camera.height, camera.width, 4), np.uint8) if camera.has_lens else None
        self._bands = self._detail_bands(topdown)
        self._band_rows = [self._rgba[first:last] for first, last, *_ in self._bands]
        focal = view.focal_px
        self._columns = int(round(2 * math.pi * focal))  # panorama at the camera's angular resolution
        offsets = np.arctan((np.arange(view.width) - (view.width - 1) / 2.0) / focal)
        # Panorama column each pixel column sees at yaw 0 (to the right = clockwise); the
        # 4 pi keeps yaw + angle positive, so truncating the index is flooring it, and
        # np.take(mode="wrap") wraps it round the panorama.
        self._columns_per_rad = self._columns / (2 * math.pi)
        self._column_offsets = (4 * math.pi - offsets) * self._columns_per_rad
        backdrop = render_backdrop(
            track.style, self._floor_row, view.horizon_row, self._columns, view.height - self._floor_row
        )
        self._room = _packed(backdrop.room)  # (floor_row, columns) uint32
        self._reflection = _packed(backdrop.reflection)  # (H - floor_row, columns) uint32
        self._reflection_now = np.empty((view.height - self._floor_row, view.width), np.uint32)
        self._frame = np.empty(camera.shape, np.uint8)

    @property
    def floor_row(self) -> int:
        """First row of the pinhole view that shows floor (rows above show the room)."""
        return self._floor_row

    def render(self, state: VehicleState) -> np.ndarray:
        """RGB uint8 frame (height, width, 3) seen from `state`. The array is reused by the
        next call: copy it to keep it."""
        columns = (self._column_offsets + state.yaw * self._columns_per_rad).astype(np.intp)
        top = self._floor_row
        if top > 0:
            np.take(self._room, columns, axis=1, out=self._pixels[:top], mode="wrap")
        cos_yaw, sin_yaw = math.cos(state.yaw), math.sin(state.yaw)
        car_to_world = np.array([[cos_yaw, -sin_yaw, state.x], [sin_yaw, cos_yaw, state.y], [0.0, 0.0, 1.0]])
        for (first, last, texture, world_to_texture, image_to_car), rows in zip(self._bands, self._band_rows):
            cv2.warpPerspective(
                texture,
                world_to_texture @ car_to_world @ image_to_car,
                (self._view.width, last - first),
                dst=rows,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=self._floor_rgba,
            )
        np.take(self._reflection, columns, axis=1, out=self._reflection_now, mode="wrap")
        floor = self._rgba[top:]
        cv2.add(floor, self._reflection_now.view(np.uint8).reshape(floor.shape), dst=floor)
        rgba = self._rgba
        if self._lens_rgba is not None:
            rgba = distort_image(self.camera, self._rgba, self._view, dst=self._lens_rgba)
        cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB, dst=self._frame)
        if self.effects.active:
            self._apply_effects(self._frame)
        return self._frame

    def _first_floor_row(self) -> int:
        """The row where the floor at the wall distance appears (the room is drawn above)."""
        view = self._view
        wall = view.project(np.array([[view.forward_m + self.track.style.wall_distance_m, 0.0]]))[0, 1]
        return int(np.clip(math.ceil(wall), 0, view.height - 1))

    def _detail_bands(self, topdown: TopDown) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
        """Row bands (first, last, RGBA texture, world->texture, band pixel->car floor):
        near rows sample the full texture, far rows a half-size copy."""
        view = self._view
        image_to_car = view.image_to_ground()
        centre = (view.width - 1) / 2.0

        def ground(v: float) -> np.ndarray:
            point = image_to_car @ np.array([centre, v, 1.0])
            return point[:2] / point[2]

        # Texels covered by one pixel step down the image (the long axis of the footprint).
        rows = np.arange(self._floor_row, view.height)
        texels = (
            np.array([np.linalg.norm(ground(v) - ground(v + 1)) for v in rows.tolist()]) * topdown.px_per_m
        )
        fine = texels < _DETAIL_TEXELS
        split = int(rows[np.argmax(fine)]) if np.any(fine) else view.height
        full = cv2.cvtColor(topdown.image, cv2.COLOR_RGB2RGBA)
        half = cv2.resize(full, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        bands = []
        for first, last, texture, scale in (
            (self._floor_row, split, half, 0.5),
            (split, view.height, full, 1.0),
        ):
            if last > first:
                world_to_texture = np.diag([scale, scale, 1.0]) @ topdown.world_to_pixel
                shift = np.array(
                    [[1.0, 0, 0], [0, 1.0, first], [0, 0, 1.0]]
                )  # band row 0 = image row `first`
                bands.append((first, last, texture, world_to_texture, image_to_car @ shift))
        return bands

    def _apply_effects(self, frame: np.ndarray) -> None:
        """Exposure drift, blur and sensor noise, in place."""
        effects = self.effects
        if effects.exposure > 0:  # a random walk pulled back to 1: slow auto-exposure swings
            self._gain += 0.1 * (1.0 - self._gain) + self._rng.normal(0.0, effects.exposure * 0.3)
            cv2.convertScaleAbs(frame, dst=frame, alpha=max(self._gain, 0.2))
        if effects.blur > 0:
            cv2.GaussianBlur(frame, (0, 0), effects.blur, dst=frame)
        if effects.noise > 0:  # a window at a random place in a noise field twice the frame's size
            if self._noise is None:
                height, width, channels = frame.shape
                self._noise = self._rng.normal(0.0, effects.noise, (2 * height, 2 * width, channels))
                self._noise = self._noise.astype(np.int16)
                self._noisy = np.empty(frame.shape, np.int16)
            top, left = self._rng.integers(frame.shape[0]), self._rng.integers(frame.shape[1])
            window = self._noise[top : top + frame.shape[0], left : left + frame.shape[1]]
            cv2.add(frame, window, dst=self._noisy, dtype=cv2.CV_16S)
            np.clip(self._noisy, 0, 255, out=self._noisy)
            frame[:] = self._noisy


def _packed(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint32 holding RGBA bytes (alpha 0), for fast gathers."""
    rgba = np.ascontiguousarray(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA) if rgb.size else np.zeros((*rgb.shape[:2], 4), np.uint8)
    )
    rgba[:, :, 3] = 0
    return np.ascontiguousarray(rgba.view(np.uint32)[:, :, 0])
