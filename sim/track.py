"""Closed tracks: a centre line, a road width and a look, generated from a seed or loaded.

A track is a closed centre line sampled every `SPACING_M` metres (the first point is the
start line, the car drives in the order of the points), a road width and a `TrackStyle`.
Seeded tracks are rounded polygons: a random star-shaped polygon whose corners are
replaced by circular arcs of random radii, so one track mixes straights, wide and tight
curves, and S-bends where a concave corner follows a convex one; a preset (sim/presets.py)
sets the ranges. Every generated track is checked to be drivable: no curve tighter than
the preset's minimum radius (`MIN_RADIUS_M` for `mixed`, well above the car's turning
circle) and no part of the road closer than its clearance to another part.

Cross-track error (CTE) is signed: positive when the car is LEFT of the centre line
(looking along the driving direction), negative when right.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.presets import ShapeRanges, get_preset
from sim.style import TrackStyle

SPACING_M = 0.05  # centre-line sample spacing
MIN_RADIUS_M = ShapeRanges().min_radius_m  # tightest curve of a `mixed` track (the car turns in 0.69 m)
CLEARANCE_M = ShapeRanges().clearance_m  # least gap between the edges of two different parts of the road
TRACK_FORMAT = "tubcar-track/1"
_SEARCH_WINDOW_M = 2.0  # CTE lookup searches this far either side of the last match


@dataclass(frozen=True)
class TrackPoint:
    """Where a position lies relative to the centre line."""

    index: int  # nearest centre-line sample
    s: float  # arc length from the start line, metres, in [0, length)
    cte: float  # signed cross-track error, metres (+ = left of the centre line)
    heading: float  # centre-line direction at s, radians


@dataclass(eq=False)
class Track:
    """A closed track: centre line (N, 2) metres, road width, style, and its seed if any."""

    points: np.ndarray
    width_m: float
    style: TrackStyle = field(default_factory=TrackStyle)
    seed: int | None = None
    name: str = ""
    preset: str = "mixed"  # the kind of track it was drawn from (sim/presets.py)

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 8:
            raise ValueError(
                f"a track needs at least 8 centre-line points of shape (N, 2), got {points.shape}"
            )
        if not np.all(np.isfinite(points)):
            raise ValueError("track centre line has non-finite points")
        if not self.width_m > 0:
            raise ValueError(f"track width must be positive, got {self.width_m}")
        get_preset(self.preset)  # a clear error for an unknown kind of track
        self.points = _resample_closed(points, SPACING_M)
        segments = np.roll(self.points, -1, axis=0) - self.points  # (N, 2), i -> i+1
        self._segment_length = np.hypot(segments[:, 0], segments[:, 1])
        self._tangent = segments / self._segment_length[:, None]
        self._s = np.concatenate([[0.0], np.cumsum(self._segment_length)[:-1]])  # (N,)
        self.length = float(self._segment_length.sum())
        self.headings = np.arctan2(self._tangent[:, 1], self._tangent[:, 0])  # (N,)
        turn = _wrap(np.roll(self.headings, -1) - np.roll(self.headings, 1))
        self.curvature = turn / (2.0 * SPACING_M)  # (N,), 1/m, + = turning left
        if not self.name:
            self.name = f"seed {self.seed}" if self.seed is not None else "track"
        # For `locate`: plain-Python copies (fast scalar access) and a wrapped, padded line.
        self._window_half = int(_SEARCH_WINDOW_M / SPACING_M)
        self._padded = np.concatenate(
            [self.points[-self._window_half :], self.points, self.points[: self._window_half]]
        )
        self._point_list = self.points.tolist()
        self._tangent_list = self._tangent.tolist()
        self._segment_length_list = self._segment_length.tolist()

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_seed(cls, seed: int, preset: str = "mixed", floor: int | None = None) -> Track:
        """The track of an integer seed: same seed and preset (sim/presets.py), same track,
        shape and look. `floor` lays it on the preset's floor of that index (modulo the
        number of floors) instead of the seed's own; the rest of the look stays the seed's."""
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"track seed must be a non-negative integer, got {seed!r}")
        kind = get_preset(preset)
        rng = np.random.default_rng([int(seed), 0x7BAC])
        width = float(rng.uniform(*kind.shape.road_width_m))
        for _ in range(1000):
            points = _rounded_polygon(rng, width, kind.shape)
            if points is not None:
                break
        else:  # pragma: no cover - the generator succeeds within a few tries
            raise RuntimeError(f"could not generate a drivable track for seed {seed}")
        if rng.random() < 0.5:
            points = points[::-1]
        points = _start_on_longest_straight(points)
        name = f"seed {seed}" if preset == "mixed" else f"{preset} seed {seed}"
        style = TrackStyle.random(rng, kind.look, floor)
        if floor is not None:
            name += f" on {kind.look.floor(floor)[0]}"
        return cls(points, width, style, seed=int(seed), name=name, preset=preset)

    @classmethod
    def load(cls, path: str | Path) -> Track:
        """Read a track file (JSON: format, centre line points, width_m, optional style)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a readable track file ({err})") from err
        if not isinstance(data, dict) or "points" not in data or "width_m" not in data:
            raise ValueError(f"{path}: a track file needs 'points' and 'width_m'")
        if data.get("format", TRACK_FORMAT) != TRACK_FORMAT:
            raise ValueError(f"{path}: unknown track format {data['format']!r}, expected {TRACK_FORMAT!r}")
        try:
            style = TrackStyle.from_dict(data.get("style", {}))
            return cls(
                np.asarray(data["points"], dtype=np.float64),
                float(data["width_m"]),
                style,
                seed=data.get("seed"),
                name=data.get("name", path.stem),
                preset=data.get("preset", "mixed"),
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from err

    def save(self, path: str | Path) -> Path:
        """Write the track as JSON (what `load` reads); returns the path."""
        path = Path(path)
        data = {
            "format": TRACK_FORMAT,
            "name": self.name,
            "seed": self.seed,
            "preset": self.preset,
            "width_m": self.width_m,
            "style": self.style.to_dict(),
            "points": np.round(self.points, 4).tolist(),
        }
        path.write_text(json.dumps(data))
        return path

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.points)

    @property
    def min_radius_m(self) -> float:
        """Radius of the tightest curve on the centre line."""
        return float(1.0 / max(np.abs(self.curvature).max(), 1e-9))

    def locate(self, x: float, y: float, hint: int | None = None) -> TrackPoint:
        """Nearest centre-line position to (x, y), with signed CTE.

        With `hint` (the last index) only a window of +-2 m around it is searched, which
        keeps the per-step cost constant; without it the whole line is scanned.
        """
        n = len(self.points)
        half = self._window_half
        if hint is None or 2 * half + 1 >= n:
            offsets = self.points - (x, y)
            nearest = int(np.argmin(np.einsum("ij,ij->i", offsets, offsets)))
        else:  # the padded copy makes the window one contiguous slice, wrap-around included
            offsets = self._padded[hint % n : hint % n + 2 * half + 1] - (x, y)
            nearest = (hint % n - half + int(np.argmin(np.einsum("ij,ij->i", offsets, offsets)))) % n
        # Project onto the segment after the nearest point, or the one before it.
        best: tuple[float, int, float, float] | None = None
        for i in (nearest, (nearest - 1) % n):
            px, py = self._point_list[i]
            tx, ty = self._tangent_list[i]
            along = min(max((x - px) * tx + (y - py) * ty, 0.0), self._segment_length_list[i])
            cx, cy = px + along * tx, py + along * ty
            distance2 = (x - cx) ** 2 + (y - cy) ** 2
            if best is None or distance2 < best[0]:
                side = tx * (y - py) - ty * (x - px)  # cross product: + = left
                best = (distance2, i, along, math.copysign(math.sqrt(distance2), side))
        assert best is not None  # the loop ran: a track has points
        _, i, along, cte = best
        s = (self._s[i] + along) % self.length
        return TrackPoint(index=nearest, s=float(s), cte=cte, heading=float(self.headings[i]))

    def pose_at(self, s: float) -> tuple[float, float, float]:
        """(x, y, heading) of the centre line at arc length s (wraps around the lap)."""
        s = s % self.length
        i = int(np.searchsorted(self._s, s, side="right") - 1)
        along = s - self._s[i]
        px, py = self.points[i]
        tx, ty = self._tangent[i]
        return float(px + along * tx), float(py + along * ty), float(self.headings[i])

    def index_at(self, s: float) -> int:
        """Index of the centre-line sample at or just before arc length s."""
        return int(np.searchsorted(self._s, s % self.length, side="right") - 1)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right road edges, each (N, 2) metres."""
        normal = np.stack([-self._tangent[:, 1], self._tangent[:, 0]], axis=1)
        normal = normal + np.roll(normal, 1, axis=0)  # average of both adjacent segments
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        half = self.width_m / 2.0
        return self.points + half * normal, self.points - half * normal

    def bounds(self, margin_m: float = 0.0) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) of the road plus a margin, metres."""
        low = self.points.min(axis=0) - self.width_m / 2 - margin_m
        high = self.points.max(axis=0) + self.width_m / 2 + margin_m
        return float(low[0]), float(low[1]), float(high[0]), float(high[1])


# --------------------------------------------------------------------- generation
def _rounded_polygon(rng: np.random.Generator, width: float, shape: ShapeRanges) -> np.ndarray | None:
    """One candidate centre line, or None when it is not drivable (caller retries)."""
    corners = int(rng.integers(shape.corners[0], shape.corners[1] + 1))
    angles = (np.arange(corners) + rng.uniform(-0.35, 0.35, corners)) * 2 * math.pi / corners
    dented = rng.random(corners) < shape.dent_chance  # a corner pulled inwards: an S-bend
    radii = rng.uniform(*shape.polygon_radius_m) * np.where(
        dented, rng.uniform(*shape.dent_depth, corners), rng.uniform(0.8, 1.0, corners)
    )
    vertices = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)  # (K, 2)
    vertices[:, 0] *= rng.uniform(*shape.stretch)  # long tracks as well as round ones
    incoming = vertices - np.roll(vertices, 1, axis=0)
    edge_length = np.linalg.norm(incoming, axis=1)  # edge k ends at vertex k
    direction = incoming / edge_length[:, None]
    outgoing = np.roll(direction, -1, axis=0)
    turn = _wrap(np.arctan2(outgoing[:, 1], outgoing[:, 0]) - np.arctan2(direction[:, 1], direction[:, 0]))
    if np.abs(turn).max() > math.radians(150):
        return None
    arc_radius = rng.uniform(*shape.arc_radius_m, corners)
    tangent = arc_radius * np.tan(np.abs(turn) / 2)  # how far each arc reaches along its edges
    # Shrink arcs that do not fit on their edges, but never below the shape's minimum radius.
    for _ in range(20):
        need = tangent + np.roll(tangent, 1)  # both arcs sharing edge k
        fit = np.minimum(1.0, 0.9 * edge_length / np.maximum(need, 1e-9))
        scale = np.minimum(fit, np.roll(fit, -1))
        if np.all(scale >= 1.0):
            break
        arc_radius = np.maximum(arc_radius * scale, shape.min_radius_m)
        tangent = arc_radius * np.tan(np.abs(turn) / 2)
    if np.any(tangent + np.roll(tangent, 1) > edge_length):
        return None
    pieces = []
    for k in range(corners):
        start = vertices[k] - tangent[k] * direction[k]
        left = np.array([-direction[k, 1], direction[k, 0]])
        centre = start + math.copysign(arc_radius[k], turn[k]) * left
        start_angle = math.atan2(start[1] - centre[1], start[0] - centre[0])
        steps = max(2, int(abs(turn[k]) * arc_radius[k] / SPACING_M))
        sweep = start_angle + np.linspace(0.0, turn[k], steps)
        pieces.append(centre + arc_radius[k] * np.stack([np.cos(sweep), np.sin(sweep)], axis=1))
    points = _resample_closed(np.concatenate(pieces), SPACING_M)
    return points if _clear_of_itself(points, width, shape.clearance_m) else None


def _clear_of_itself(points: np.ndarray, width: float, clearance: float) -> bool:
    """True when no two distant parts of the road come closer than the clearance."""
    coarse = points[:: max(1, int(0.2 / SPACING_M))]  # every ~0.2 m
    n = len(coarse)
    gap = np.linalg.norm(coarse[:, None, :] - coarse[None, :, :], axis=2)  # (n, n)
    index = np.arange(n)
    separation = np.abs(index[:, None] - index[None, :])
    separation = np.minimum(separation, n - separation) * 0.2  # metres along the track
    distant = separation > math.pi * (width + clearance) / 2
    return bool(np.all(gap[distant] >= width + clearance))


def _start_on_longest_straight(points: np.ndarray) -> np.ndarray:
    """Roll the centre line so the start line sits mid-way along its longest straight."""
    headings = np.arctan2(*(np.roll(points, -1, axis=0) - points).T[::-1])
    straight = np.abs(_wrap(np.roll(headings, -1) - headings)) < 1e-3
    best_start, best_length, run_start = 0, 0, None
    doubled = np.concatenate([straight, straight])
    for i, is_straight in enumerate(doubled):
        if is_straight and run_start is None:
            run_start = i
        elif not is_straight and run_start is not None:
            if i - run_start > best_length:
                best_start, best_length = run_start, i - run_start
            run_start = None
    middle = (best_start + best_length // 2) % len(points)
    return np.roll(points, -middle, axis=0)


def _resample_closed(points: np.ndarray, spacing: float) -> np.ndarray:
    """Resample a closed polyline at (nearly) even arc-length spacing; (M, 2)."""
    closed = np.concatenate([points, points[:1]])
    step = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    keep = np.concatenate([[True], step > 1e-9])
    closed = closed[keep]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    count = max(8, int(round(s[-1] / spacing)))
    samples = np.linspace(0.0, s[-1], count, endpoint=False)
    return np.stack([np.interp(samples, s, closed[:, 0]), np.interp(samples, s, closed[:, 1])], axis=1)


def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi
