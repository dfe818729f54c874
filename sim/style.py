"""How a track looks: floor, road, markings, lighting and the room around it.

Every seed draws its own style, so a model trained on a few seeds has seen several
floors, lights and rooms and cannot learn one of them by heart. The visual language stays
the real track's: a road with solid white edge lines and a dashed yellow centre line.
Colours are RGB 0-255.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

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
    texture_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("edge_width_m", "centre_width_m", "dash_m", "gap_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrackStyle.{name} must be positive")

    @classmethod
    def random(cls, rng: np.random.Generator) -> TrackStyle:
        """A random but plausible look, drawn from `rng`."""
        _, floor = FLOORS[int(rng.integers(len(FLOORS)))]
        floor = _muted(_jitter(rng, floor, 14))
        if rng.random() < 0.5:
            road = floor  # tape on the floor
        else:  # a painted or matted road surface, visibly different from the floor
            shift = (-1 if rng.random() < 0.7 else 1) * rng.uniform(
                25, 45
            )  # mostly darker: markings stand out
            road = _muted(_jitter(rng, tuple(np.clip(np.array(floor) + shift, 20, 150)), 8))
        edge_grey = int(rng.uniform(215, 250))
        return cls(
            floor_rgb=floor,
            road_rgb=road,
            edge_rgb=_jitter(rng, (edge_grey,) * 3, 6),
            centre_rgb=(int(rng.uniform(225, 255)), int(rng.uniform(180, 215)), int(rng.uniform(0, 40))),
            edge_width_m=float(rng.uniform(0.04, 0.06)),
            centre_width_m=float(rng.uniform(0.035, 0.05)),
            dash_m=float(rng.uniform(0.1, 0.25)),
            gap_m=float(rng.uniform(0.1, 0.25)),
            grain=float(rng.uniform(3, 12)),
            blotch=float(rng.uniform(0, 18)),
            tiles_m=float(rng.choice([0.0, 0.0, 0.3, 0.5, 0.6])),
            brightness=float(rng.uniform(0.85, 1.2)),
            tint=tuple(float(t) for t in rng.uniform(0.92, 1.08, 3)),
            light_falloff=float(rng.uniform(0.0, 0.35)),
            gloss=float(rng.uniform(0.0, 0.8)),
            wall_rgb=_jitter(rng, (rng.uniform(45, 150),) * 3, 12),
            ceiling_rgb=_jitter(rng, (rng.uniform(15, 55),) * 3, 8),
            lights=int(rng.integers(2, 6)),
            clutter=int(rng.integers(8, 40)),
            texture_seed=int(rng.integers(2**31)),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrackStyle:
        """Inverse of `to_dict`; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown track style keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _muted(rgb: tuple[int, int, int], spread: float = 45.0) -> tuple[int, int, int]:
    """Pull a colour towards its grey until its channels differ by at most `spread`, so no
    floor or road is as colourful as the yellow centre line."""
    values = np.asarray(rgb, dtype=float)
    grey = values.mean()
    extent = values.max() - values.min()
    if extent > spread:
        values = grey + (values - grey) * spread / extent
    return tuple(int(round(v)) for v in values)


def _jitter(rng: np.random.Generator, rgb, amount: float) -> tuple[int, int, int]:
    values = np.clip(np.asarray(rgb, dtype=float) + rng.uniform(-amount, amount, 3), 0, 255)
    return tuple(int(v) for v in values)
