"""How a track looks: floor, road, markings, lighting and the room around it.

Every seed draws its own style from a `StyleRanges` (sim/presets.py names them), so a
model trained on a few seeds has seen several floors, lights and rooms and cannot learn
one of them by heart. The visual language stays the real track's: a road with solid white
edge lines and a dashed yellow centre line. Colours are RGB 0-255, sizes in metres.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

import numpy as np

Range = tuple[float, float]  # (low, high) of a uniform draw
ROOMS = ("hall", "warehouse")
T = TypeVar("T")

# Floors a hobbyist's track is laid on: (name, RGB).
FLOORS = (
    ("glossy green-grey", (92, 94, 74)),
    ("concrete", (128, 126, 118)),
    ("blue epoxy", (70, 84, 100)),
    ("wood", (122, 92, 62)),
    ("dark carpet", (62, 62, 68)),
    ("light tiles", (146, 142, 130)),
    ("asphalt", (78, 78, 80)),
)


@dataclass(frozen=True)
class TrackStyle:
    """Colours, marking sizes and lighting of one track; the default is the real track."""

    floor_rgb: tuple[int, int, int] = (92, 94, 74)
    road_rgb: tuple[int, int, int] = (92, 94, 74)  # equal to the floor: a taped track
    edge_rgb: tuple[int, int, int] = (240, 240, 236)
    centre_rgb: tuple[int, int, int] = (236, 200, 40)
    edge_width_m: float = 0.05
    centre_width_m: float = 0.04
    dash_m: float = 0.15
    gap_m: float = 0.15
    grain: float = 8.0  # amplitude of the fine floor texture
    blotch: float = 10.0  # amplitude of large, soft floor stains
    tiles_m: float = 0.0  # tile size; 0 = no tile seams
    brightness: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    light_falloff: float = 0.2  # darkening towards the edges of the lit area
    gloss: float = 0.6  # strength of ceiling-light reflections on the floor
    wall_rgb: tuple[int, int, int] = (70, 66, 60)
    ceiling_rgb: tuple[int, int, int] = (30, 28, 26)
    lights: int = 4  # rows of ceiling lights
    clutter: int = 30  # objects (people, tables, cones, panels) along the walls
    wall_distance_m: float = 6.0  # where the room's walls stand: the floor ends there
    room: str = "hall"  # "hall": walls and a dark ceiling; "warehouse": a fence, a lit hall behind it
    texture_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("edge_width_m", "centre_width_m", "dash_m", "gap_m", "wall_distance_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrackStyle.{name} must be positive")
        if self.room not in ROOMS:
            raise ValueError(f"TrackStyle.room must be one of {ROOMS}, got {self.room!r}")

    @classmethod
    def random(
        cls, rng: np.random.Generator, ranges: StyleRanges | None = None, floor: int | None = None
    ) -> TrackStyle:
        """A random but plausible look drawn from `rng` within `ranges` (default: any room).

        `floor` picks `ranges.floor(floor)` instead of a random one (the rest of the look
        is drawn as usual), so a few training tracks can span every floor.
        """
        ranges = StyleRanges() if ranges is None else ranges

        def draw(bounds: Range) -> float:
            return float(rng.uniform(*bounds))

        drawn = int(rng.integers(len(ranges.floors)))  # drawn either way: the rest stays the seed's
        _, floor_rgb = ranges.floor(drawn if floor is None else floor)
        floor_rgb = _muted(_jitter(rng, floor_rgb, ranges.floor_jitter))
        if rng.random() < 1.0 - ranges.painted_road:
            road = floor_rgb  # tape on the floor
        else:  # a painted or matted road surface, visibly different from the floor
            shift = (-1 if rng.random() < 0.7 else 1) * rng.uniform(
                25, 45
            )  # mostly darker: markings stand out
            road = _muted(_jitter(rng, tuple(np.clip(np.array(floor_rgb) + shift, 20, 150)), 8))
        edge_grey = int(rng.uniform(*ranges.edge_grey))
        return cls(
            floor_rgb=floor_rgb,
            road_rgb=road,
            edge_rgb=_jitter(rng, tuple(edge_grey * np.asarray(ranges.edge_tint)), 6),
            centre_rgb=_three(int(rng.uniform(*bounds)) for bounds in ranges.centre_rgb),
            edge_width_m=draw(ranges.edge_width_m),
            centre_width_m=draw(ranges.centre_width_m),
            dash_m=draw(ranges.dash_m),
            gap_m=draw(ranges.gap_m),
            grain=draw(ranges.grain),
            blotch=draw(ranges.blotch),
            tiles_m=float(rng.choice(ranges.tiles_m)),
            brightness=draw(ranges.brightness),
            tint=_three(float(t) for t in rng.uniform(*ranges.tint, 3)),
            light_falloff=draw(ranges.light_falloff),
            gloss=draw(ranges.gloss),
            wall_rgb=_jitter(rng, (rng.uniform(*ranges.wall_grey),) * 3, 12),
            ceiling_rgb=_jitter(rng, (rng.uniform(*ranges.ceiling_grey),) * 3, 8),
            lights=int(rng.integers(ranges.lights[0], ranges.lights[1] + 1)),
            clutter=int(rng.integers(ranges.clutter[0], ranges.clutter[1] + 1)),
            texture_seed=int(rng.integers(2**31)),
            wall_distance_m=draw(ranges.wall_distance_m),  # drawn last: older looks keep their seeds
            room=ranges.room,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackStyle:
        """Inverse of `to_dict`; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown track style keys {sorted(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class StyleRanges:
    """Where `TrackStyle.random` draws each property from: uniform (low, high) ranges,
    floors to pick from, tile sizes to choose among. The defaults: any room."""

    floors: tuple[tuple[str, tuple[int, int, int]], ...] = FLOORS
    floor_jitter: float = 14.0
    painted_road: float = 0.5  # chance of a road surface that differs from the floor
    edge_grey: Range = (215.0, 250.0)  # white tape ...
    edge_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # ... times this colour
    centre_rgb: tuple[Range, Range, Range] = ((225.0, 255.0), (180.0, 215.0), (0.0, 40.0))  # yellow tape
    edge_width_m: Range = (0.04, 0.06)
    centre_width_m: Range = (0.035, 0.05)
    dash_m: Range = (0.1, 0.25)
    gap_m: Range = (0.1, 0.25)
    grain: Range = (3.0, 12.0)
    blotch: Range = (0.0, 18.0)
    tiles_m: tuple[float, ...] = (0.0, 0.0, 0.3, 0.5, 0.6)
    brightness: Range = (0.85, 1.2)
    tint: Range = (0.92, 1.08)
    light_falloff: Range = (0.0, 0.35)
    gloss: Range = (0.0, 0.8)
    wall_grey: Range = (45.0, 150.0)
    ceiling_grey: Range = (15.0, 55.0)
    lights: tuple[int, int] = (2, 5)
    clutter: tuple[int, int] = (8, 39)
    wall_distance_m: Range = (6.0, 6.0)
    room: str = "hall"

    def floor(self, number: int) -> tuple[str, tuple[int, int, int]]:
        """Floor `number` (name, colour), counting round the list: any integer names one."""
        return self.floors[number % len(self.floors)]


def _muted(rgb: tuple[int, int, int], spread: float = 45.0) -> tuple[int, int, int]:
    """Pull a colour towards its grey until its channels differ by at most `spread`, so no
    floor or road is as colourful as the yellow centre line."""
    values = np.asarray(rgb, dtype=float)
    grey = values.mean()
    extent = values.max() - values.min()
    if extent > spread:
        values = grey + (values - grey) * spread / extent
    return _three(int(round(v)) for v in values)


def _jitter(rng: np.random.Generator, rgb, amount: float) -> tuple[int, int, int]:
    values = np.clip(np.asarray(rgb, dtype=float) + rng.uniform(-amount, amount, 3), 0, 255)
    return _three(int(v) for v in values)


def _three(values: Iterable[T]) -> tuple[T, T, T]:
    """The three channels of a colour, as the fixed-length tuple the style's fields hold."""
    first, second, third = values
    return first, second, third
