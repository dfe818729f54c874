"""The pictures a track is rendered from, made once per track: floor texture and room.

`TopDown` is the floor seen from above at `px_per_m` (road, white edge lines, dashed yellow
centre line, floor grain, stains, tile seams, lighting), with the matrix from world metres
to its pixels. `Backdrop` is a 360-degree strip of the room above the floor (walls, ceiling
lights, people and furniture as soft shapes), indexed by compass direction, plus its blurred
mirror image that a glossy floor reflects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim.style import TrackStyle
from sim.track import Track

FLOOR_MARGIN_M = 3.0  # floor drawn around the road; beyond it the floor is plain
_SUBPIXEL = 4  # cv2 drawing shift: coordinates in 1/16 pixel


@dataclass(frozen=True)
class TopDown:
    """Floor texture (H, W, 3) RGB uint8 and the 3x3 map world (x, y, 1) -> texture pixel."""

    image: np.ndarray
    world_to_pixel: np.ndarray
    px_per_m: float
    floor_rgb: tuple[int, int, int]  # lit plain floor, for everything beyond the texture


def render_topdown(track: Track, px_per_m: float = 100.0) -> TopDown:
    """Paint the track's floor, road and markings, lit by the style's lighting."""
    style = track.style
    rng = np.random.default_rng(style.texture_seed)
    min_x, min_y, max_x, max_y = track.bounds(FLOOR_MARGIN_M)
    width = int(math.ceil((max_x - min_x) * px_per_m))
    height = int(math.ceil((max_y - min_y) * px_per_m))
    world_to_pixel = np.array(
        [[px_per_m, 0.0, -min_x * px_per_m], [0.0, -px_per_m, max_y * px_per_m], [0, 0, 1]]
    )

    def pixels(points: np.ndarray) -> np.ndarray:  # (N, 2) metres -> (N, 1, 2) int32 for cv2
        uv = points @ world_to_pixel[:2, :2].T + world_to_pixel[:2, 2]
        return np.round(uv * (1 << _SUBPIXEL)).astype(np.int32).reshape(-1, 1, 2)

    def thickness(metres: float) -> int:
        return max(1, int(round(metres * px_per_m)))

    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = style.floor_rgb
    road_mask = np.zeros((height, width), np.uint8)
    closed = np.concatenate([track.points, track.points[:1]])
    cv2.polylines(road_mask, [pixels(closed)], False, 255, thickness(track.width_m), cv2.LINE_AA, _SUBPIXEL)
    _blend(canvas, road_mask, np.asarray(style.road_rgb, np.float32))
    canvas += _surface_texture(rng, (height, width), px_per_m, style)

    markings = np.zeros((height, width), np.uint8)
    centre = np.zeros((height, width), np.uint8)
    inset = (track.width_m - style.edge_width_m) / 2.0
    for edge in _offset_lines(track, inset):
        cv2.polylines(
            markings, [pixels(edge)], True, 255, thickness(style.edge_width_m), cv2.LINE_AA, _SUBPIXEL
        )
    for dash in _dashes(track, style.dash_m, style.gap_m):
        cv2.polylines(
            centre, [pixels(dash)], False, 255, thickness(style.centre_width_m), cv2.LINE_AA, _SUBPIXEL
        )
    for mask, rgb in ((markings, style.edge_rgb), (centre, style.centre_rgb)):
        painted = np.count_nonzero(mask)
        worn = np.asarray(rgb, np.float32) - rng.uniform(0, 18, (painted, 1)).astype(
            np.float32
        )  # uneven tape
        _blend(canvas, mask, worn)

    canvas *= _lighting(rng, (height, width), style)
    floor_lit = np.clip(
        np.asarray(style.floor_rgb) * style.brightness * np.asarray(style.tint) * (1 - style.light_falloff),
        0,
        255,
    )
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    red, green, blue = (int(v) for v in floor_lit)
    return TopDown(image, world_to_pixel, px_per_m, (red, green, blue))


def _blend(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Paint `colour` (3,) or (painted pixels, 3) over `canvas` where the uint8 `mask` is
    set, with its antialiased edge as opacity; only the painted pixels are touched."""
    painted = mask > 0
    alpha = mask[painted].astype(np.float32)[:, None] / 255.0
    canvas[painted] = canvas[painted] * (1.0 - alpha) + colour * alpha


def _offset_lines(track: Track, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """The centre line moved `offset` metres to its left and right; two (N, 2) arrays."""
    left, right = track.edges()
    half = track.width_m / 2.0
    return (
        track.points + (left - track.points) * offset / half,
        track.points + (right - track.points) * offset / half,
    )


def _dashes(track: Track, dash_m: float, gap_m: float) -> list[np.ndarray]:
    """Centre-line pieces of the dashed line: `dash_m` painted, `gap_m` bare, repeated."""
    period = dash_m + gap_m
    count = max(1, int(round(track.length / period)))
    period = track.length / count  # a whole number of dashes per lap: no seam at the start
    dash = period * dash_m / (dash_m + gap_m)
    pieces = []
    for k in range(count):
        s = np.linspace(k * period, k * period + dash, max(2, int(dash / 0.02)))
        pieces.append(np.array([track.pose_at(value)[:2] for value in s]))
    return pieces


def _surface_texture(
    rng: np.random.Generator, shape: tuple[int, int], px_per_m: float, style: TrackStyle
) -> np.ndarray:
    """Additive floor texture (H, W, 1): fine grain, soft stains and optional tile seams."""
    height, width = shape
    noise = rng.standard_normal((height, width), dtype=np.float32) * np.float32(style.grain)
    grain = cv2.GaussianBlur(noise, (3, 3), 0.8)
    coarse = rng.normal(0.0, 1.0, (max(2, int(height / px_per_m * 2)), max(2, int(width / px_per_m * 2))))
    stains = (
        cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC) * style.blotch
    )
    texture = grain + stains
    if style.tiles_m > 0:
        step = style.tiles_m * px_per_m
        seams = np.zeros((height, width), np.float32)
        seams[(np.arange(height) % step) < max(1.0, px_per_m * 0.006), :] = 1.0
        seams[:, (np.arange(width) % step) < max(1.0, px_per_m * 0.006)] = 1.0
        texture -= cv2.GaussianBlur(seams, (3, 3), 0.8) * 25.0
    return texture[:, :, None]


def _room_shell(
    rng: np.random.Generator, style: TrackStyle, height: int, horizon_row: float, columns: int
) -> np.ndarray:
    """(height, columns, 3) float: ceiling fading into the wall, pillars and a beam."""
    wall_top = horizon_row - rng.uniform(6, 16)  # where the wall meets the ceiling, in rows
    blend = np.clip((np.arange(height, dtype=np.float32) - wall_top + 4) / 8.0, 0, 1)[:, None, None]
    room = np.empty((height, columns, 3), np.float32)
    room[:] = (
        np.asarray(style.ceiling_rgb, np.float32) * (1 - blend)
        + np.asarray(style.wall_rgb, np.float32) * blend
    )
    room += rng.standard_normal((height, columns, 1), dtype=np.float32) * 3.0
    for _ in range(int(rng.integers(2, 8))):  # pillars from floor to ceiling
        left, width = int(rng.integers(columns)), int(rng.integers(2, 6))
        room[:, left : left + width] *= rng.uniform(0.6, 1.4)
    beam = int(rng.uniform(0, max(1, wall_top)))
    room[beam : beam + 2] *= 0.6
    return room


def _paint_object(rng: np.random.Generator, room: np.ndarray, floor_line: int) -> None:
    """One person, table, cone or wall panel standing on the floor line, in muted colours."""
    columns = room.shape[1]
    left = int(rng.integers(columns - 32))
    muted = (
        np.full(3, rng.uniform(40, 200), np.float32) * 0.6 + rng.uniform(20, 240, 3).astype(np.float32) * 0.4
    )
    kind = rng.choice(["person", "table", "cone", "panel"], p=[0.45, 0.25, 0.2, 0.1])
    if kind == "person":
        width, tall = int(rng.integers(4, 8)), int(rng.uniform(14, 34))
        top = max(0, floor_line - tall)
        room[top + 3 : floor_line, left : left + width] = muted
        cv2.circle(
            room,
            (left + width // 2, top + 2),
            max(1, width // 2),
            tuple(rng.uniform(120, 200, 3)),
            -1,
            cv2.LINE_AA,
        )
    elif kind == "table":
        width, tall = int(rng.integers(8, 30)), int(rng.uniform(4, 10))
        room[max(0, floor_line - tall) : floor_line - tall + 2, left : left + width] = muted
        room[max(0, floor_line - tall) : floor_line, left : left + 2] = muted * 0.7
        room[max(0, floor_line - tall) : floor_line, left + width - 2 : left + width] = muted * 0.7
    elif kind == "cone":
        width = int(rng.integers(3, 6))
        tall = width + 2
        triangle = np.array(
            [[left, floor_line], [left + width, floor_line], [left + width / 2, floor_line - tall]]
        )
        cv2.fillPoly(room, [np.round(triangle).astype(np.int32)], (235, 150, 30), cv2.LINE_AA)
    else:
        width, tall = int(rng.integers(15, 32)), int(rng.uniform(10, 20))
        bottom = floor_line - int(rng.uniform(2, 8))
        room[max(0, bottom - tall) : bottom, left : left + width] = np.clip(muted + 60, 0, 255)


def _warehouse_hall(
    rng: np.random.Generator, style: TrackStyle, height: int, horizon_row: float, columns: int
) -> np.ndarray:
    """(height, columns, 3) float: a big lit hall seen over a fence a few metres away, as
    round the real track: a dark roof full of lights, machines, panels and white walls in
    the distance, people in dark clothes behind a wire fence with posts, cones at its foot."""
    focal = columns / (2 * math.pi)  # pixels per radian
    floor_line = height  # the fence stands where the floor ends
    room = np.empty((height, columns, 3), np.float32)
    fade = np.clip((np.arange(height, dtype=np.float32) - (horizon_row - 0.35 * focal)) / (0.3 * focal), 0, 1)
    room[:] = (
        np.asarray(style.ceiling_rgb, np.float32) * (1 - fade[:, None, None])
        + np.asarray(style.wall_rgb, np.float32) * fade[:, None, None]
    )
    room += rng.standard_normal((height, columns, 1), dtype=np.float32) * 4.0
    far = int(max(0, horizon_row - 0.06 * focal))  # where the far side of the hall stands
    for _ in range(3 * style.clutter):  # machines, shelves, white walls and panels far away
        left, width = int(rng.integers(columns)), int(rng.integers(4, 40))
        tall = int(rng.uniform(0.04, 0.3) * focal)
        grey = 30.0 + 190.0 * rng.random() ** 2  # mostly dark, a few white walls
        colour = np.full(3, grey, np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
        room[max(0, far - tall) : far + 2, left : left + width] = colour
    for _ in range(style.clutter // 3):  # blue pillars, cabinets
        left, width = int(rng.integers(columns)), int(rng.integers(5, 14))
        room[: far + 2, left : left + width] = rng.choice([(40, 130, 190), (70, 70, 75), (150, 150, 150)])
    metres = focal / style.wall_distance_m  # pixels per metre at the fence
    for _ in range(style.clutter // 2):  # people behind the fence, 1.5-1.8 m tall, dark clothes
        distance = rng.uniform(1.5, 5.0)  # times the fence's distance
        tall = int(rng.uniform(1.5, 1.8) * metres / distance)
        width = max(2, int(0.4 * metres / distance))
        left = int(rng.integers(columns))
        feet = floor_line - int(0.25 * metres * (1 - 1 / distance))  # farther away: higher up
        clothes = np.asarray(
            rng.choice([(35, 35, 40), (40, 50, 80), (90, 80, 70), (150, 150, 150), (60, 40, 30)])
        )
        room[max(0, feet - tall + width) : feet, left : left + width] = clothes * rng.uniform(0.8, 1.2)
        cv2.circle(
            room,
            (left + width // 2, max(0, feet - tall + width // 2)),
            max(1, width // 2),
            (170, 130, 110),
            -1,
        )
    post_gap = max(3, int(2.5 * metres))  # a wire fence 1.2 m high with posts every 2.5 m
    rail = max(0, floor_line - int(1.2 * metres))
    room[rail:floor_line] = room[rail:floor_line] * 0.8 + 40
    room[rail : rail + 1] = (170, 170, 165)
    for left in range(int(rng.integers(post_gap)), columns, post_gap):
        room[rail:floor_line, left : left + max(1, int(0.04 * metres))] = (175, 175, 170)
    for _ in range(style.clutter // 3):  # traffic cones at the fence's foot
        left, width = int(rng.integers(columns - 8)), max(2, int(0.12 * metres))
        triangle = np.array(
            [[left, floor_line], [left + width, floor_line], [left + width / 2, floor_line - 1.5 * width]]
        )
        cv2.fillPoly(room, [np.round(triangle).astype(np.int32)], (230, 200, 60), cv2.LINE_AA)
    return room * np.array([1.0, 1.0, 0.85], np.float32)  # warm sodium-ish light


def _lighting(rng: np.random.Generator, shape: tuple[int, int], style: TrackStyle) -> np.ndarray:
    """Multiplicative light (H, W, 3): brightness, colour tint, darker far from the lit middle."""
    height, width = shape
    cx, cy = width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65)
    dx2 = ((np.arange(width, dtype=np.float32) - cx) / (width / 2)) ** 2
    dy2 = ((np.arange(height, dtype=np.float32) - cy) / (height / 2)) ** 2
    field = 1.0 - np.float32(style.light_falloff) * np.minimum(dy2[:, None] + dx2[None, :], 1.0)  # (H, W)
    return field[:, :, None] * (style.brightness * np.asarray(style.tint, np.float32))


@dataclass(frozen=True)
class Backdrop:
    """The room around the track as a 360-degree panorama above the floor.

    `room` is (rows, columns, 3): row r is image row r of the camera (rows above where the
    far wall meets the floor); column c looks towards compass angle 2*pi*c/columns.
    `reflection` (floor_rows, columns, 3) is what the floor mirrors below that line,
    already scaled by the style's gloss, added to the rendered floor.
    """

    room: np.ndarray
    reflection: np.ndarray


def render_backdrop(
    style: TrackStyle, rows: int, horizon_row: float, columns: int, floor_rows: int
) -> Backdrop:
    """Paint the room: dark ceiling with rows of lights, walls, pillars, and people, tables
    and traffic cones standing where the far floor meets the wall."""
    rng = np.random.default_rng(style.texture_seed + 1)
    height = max(rows, 1)
    if style.room == "warehouse":
        room = _warehouse_hall(rng, style, height, horizon_row, columns)
    else:
        room = _room_shell(rng, style, height, horizon_row, columns)
        for _ in range(style.clutter):
            _paint_object(rng, room, height)
    for _ in range(style.lights):  # lights hang in rows, nearer rows higher and sparser
        y = rng.uniform(1, max(2, horizon_row - 10))
        spacing = rng.uniform(8, 24) * (1 + 2 * (horizon_row - y) / max(horizon_row, 1))
        for x in np.arange(rng.uniform(0, spacing), columns, spacing):
            radius = 1 + int(y < horizon_row / 2)
            cv2.circle(room, (int(x), int(y)), radius, (255, 252, 240), -1, cv2.LINE_AA)
    glow = cv2.GaussianBlur(np.clip(room - 200.0, 0, None), (0, 0), 2.0)  # lights bloom in a cheap lens
    room = cv2.GaussianBlur(room, (0, 0), 0.7) + glow * 0.8
    lit = room * style.brightness * np.asarray(style.tint, np.float32)
    room_u8 = np.clip(lit, 0, 255).astype(np.uint8)

    # The glossy floor mirrors the room about the floor line, smeared into vertical streaks
    # and fading with distance below it.
    mirrored = np.clip(lit[::-1], 0, 255)[:floor_rows]
    if len(mirrored) < floor_rows:
        mirrored = np.concatenate([mirrored, np.zeros((floor_rows - len(mirrored), columns, 3), np.float32)])
    streaks = cv2.GaussianBlur(mirrored, (0, 0), sigmaX=1.2, sigmaY=4.0)
    highlights = np.clip(streaks - 90.0, 0, None) * 1.5 + streaks * 0.25  # lights dominate, walls faint
    fade = np.exp(-np.arange(floor_rows, dtype=np.float32) / max(floor_rows * 0.35, 1.0))[:, None, None]
    reflection = np.clip(highlights * fade * style.gloss, 0, 255).astype(np.uint8)
    return Backdrop(room_u8, reflection)
