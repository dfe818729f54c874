"""The camera view of a track from a car pose: a perspective warp plus a panorama slice.

Per frame the cost is one `cv2.warpPerspective` per level of detail over the floor rows,
one column gather from the room panorama above them and one saturating add of the floor
reflections: no Python loop over pixels. Far floor rows sample a smaller copy of the
texture (a two-level mipmap), so distant markings blur as in a real lens instead of
flickering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim.camera import CameraModel
from sim.scene import TopDown, render_backdrop, render_topdown
from sim.track import Track
from sim.vehicle import VehicleState

WALL_DISTANCE_M = 6.0  # where the room's walls stand: the floor ends there in the image
_DETAIL_TEXELS = 2.0  # switch to the half-size texture when a pixel spans more texels


@dataclass(frozen=True)
class ImageEffects:
    """Camera imperfections applied to each frame; all off by default (a clean render).

    noise: std of per-pixel Gaussian noise (0-255 scale); blur: Gaussian sigma in pixels;
    exposure: std of a slowly drifting brightness gain (0.1 = +-10 %).
    """

    noise: float = 0.0
    blur: float = 0.0
    exposure: float = 0.0

    @property
    def active(self) -> bool:
        return self.noise > 0 or self.blur > 0 or self.exposure > 0


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
        topdown = render_topdown(track, px_per_m)
        self._floor_rgba = (*topdown.floor_rgb, 0)
        self._floor_row = self._first_floor_row()
        # Everything is drawn as RGBA, whose 4-byte pixels copy and gather fastest; one
        # conversion to RGB at the end.
        self._rgba = np.zeros((camera.height, camera.width, 4), np.uint8)
        self._pixels = self._rgba.view(np.uint32)[:, :, 0]  # (H, W): one uint32 per pixel
        self._bands = self._detail_bands(topdown)
        self._band_rows = [self._rgba[first:last] for first, last, *_ in self._bands]
        focal = camera.intrinsics()[0, 0]
        self._columns = int(round(2 * math.pi * focal))  # panorama at the camera's angular resolution
        offsets = np.arctan((np.arange(camera.width) - (camera.width - 1) / 2.0) / focal)
        # Panorama column each pixel column sees at yaw 0 (to the right = clockwise); the
        # 4 pi keeps yaw + angle positive, so truncating the index is flooring it, and
        # np.take(mode="wrap") wraps it round the panorama.
        self._columns_per_rad = self._columns / (2 * math.pi)
        self._column_offsets = (4 * math.pi - offsets) * self._columns_per_rad
        backdrop = render_backdrop(
            track.style, self._floor_row, camera.horizon_row, self._columns, camera.height - self._floor_row
        )
        self._room = _packed(backdrop.room)  # (floor_row, columns) uint32
        self._reflection = _packed(backdrop.reflection)  # (H - floor_row, columns) uint32
        self._reflection_now = np.empty((camera.height - self._floor_row, camera.width), np.uint32)
        self._frame = np.empty(camera.shape, np.uint8)

    @property
    def floor_row(self) -> int:
        """First image row that shows floor (rows above show the room)."""
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
                (self.camera.width, last - first),
                dst=rows,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=self._floor_rgba,
            )
        np.take(self._reflection, columns, axis=1, out=self._reflection_now, mode="wrap")
        floor = self._rgba[top:]
        cv2.add(floor, self._reflection_now.view(np.uint8).reshape(floor.shape), dst=floor)
        cv2.cvtColor(self._rgba, cv2.COLOR_RGBA2RGB, dst=self._frame)
        if self.effects.active:
            self._apply_effects(self._frame)
        return self._frame

    def _first_floor_row(self) -> int:
        """The row where the floor at the wall distance appears (the room is drawn above)."""
        camera = self.camera
        wall = camera.project(np.array([[camera.forward_m + WALL_DISTANCE_M, 0.0]]))[0, 1]
        return int(np.clip(math.ceil(wall), 0, camera.height - 1))

    def _detail_bands(self, topdown: TopDown) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
        """Row bands (first, last, RGBA texture, world->texture, band pixel->car floor):
        near rows sample the full texture, far rows a half-size copy."""
        camera = self.camera
        image_to_car = camera.image_to_ground()
        centre = (camera.width - 1) / 2.0

        def ground(v: float) -> np.ndarray:
            point = image_to_car @ np.array([centre, v, 1.0])
            return point[:2] / point[2]

        # Texels covered by one pixel step down the image (the long axis of the footprint).
        rows = np.arange(self._floor_row, camera.height)
        texels = np.array([np.linalg.norm(ground(v) - ground(v + 1)) for v in rows]) * topdown.px_per_m
        fine = texels < _DETAIL_TEXELS
        split = int(rows[np.argmax(fine)]) if np.any(fine) else camera.height
        full = cv2.cvtColor(topdown.image, cv2.COLOR_RGB2RGBA)
        half = cv2.resize(full, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        bands = []
        for first, last, texture, scale in (
            (self._floor_row, split, half, 0.5),
            (split, camera.height, full, 1.0),
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
        if effects.noise > 0:
            noise = self._rng.normal(0.0, effects.noise, frame.shape).astype(np.int16)
            np.clip(frame + noise, 0, 255, out=noise)
            frame[:] = noise


def _packed(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint32 holding RGBA bytes (alpha 0), for fast gathers."""
    rgba = np.ascontiguousarray(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA) if rgb.size else np.zeros(rgb.shape[:2] + (4,), np.uint8)
    )
    rgba[:, :, 3] = 0
    return np.ascontiguousarray(rgba.view(np.uint32)[:, :, 0])
