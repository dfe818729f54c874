"""Named kinds of generated track: how each seed's shape, look and camera are drawn.

`mixed` (the default) gives every seed its own room: any floor, road surface, tiles,
lights, roads 1.2-1.6 m wide with 1.5-4 m curves. `warehouse` is the real Donkey tub's
track (`tubcar calibrate-camera` on it): a warm olive glossy floor with the ceiling lights'
streaks on it, 2-inch white edge tape, a short-dashed yellow centre line, two lanes of
0.67 m, tight curves (the driver's radii were 0.8-1.7 m, 10th-90th percentile), fences a
few metres away with people, cones and lights behind, and the camera's blur and exposure
swings. Each is a range, not one look: seeds differ within it.

    preset = get_preset("warehouse")
    track = Track.from_seed(7, preset="warehouse")
    sim = Simulation(track, effects=preset.effects)
    expert = ExpertDriver(track, sim.vehicle, noise=0.4, **preset.driver.options())
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sim.effects import ImageEffects
from sim.style import Range, StyleRanges


@dataclass(frozen=True)
class ShapeRanges:
    """How `Track.from_seed` draws a centre line: a star-shaped polygon of `corners`
    vertices at `polygon_radius_m` (some pulled in by `dent_depth` to make S-bends),
    stretched along x, its corners rounded into arcs of `arc_radius_m`, never tighter than
    `min_radius_m`, and no two parts of the road closer than `clearance_m`."""

    road_width_m: Range = (1.2, 1.6)
    corners: tuple[int, int] = (5, 10)
    polygon_radius_m: Range = (5.0, 7.5)
    dent_chance: float = 0.4
    dent_depth: Range = (0.35, 0.6)
    stretch: Range = (1.0, 1.8)
    arc_radius_m: Range = (1.5, 4.0)
    min_radius_m: float = 1.5
    clearance_m: float = 0.6


@dataclass(frozen=True)
class DriverStyle:
    """How people drive such a track: the `ExpertDriver` options that imitate them."""

    lane: str = "centre"
    corner_cut_m2: float = 0.0
    min_lookahead_m: float = 0.45

    def options(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrackPreset:
    """A kind of track: its shapes, its looks, the camera imperfections that go with it and
    how its driver drives."""

    name: str
    shape: ShapeRanges
    look: StyleRanges
    effects: ImageEffects
    driver: DriverStyle = DriverStyle()


WAREHOUSE = TrackPreset(
    name="warehouse",
    shape=ShapeRanges(
        road_width_m=(1.3, 1.5),  # two lanes of 0.67 m between the edge tapes' centres
        corners=(5, 8),
        polygon_radius_m=(4.0, 5.5),  # laps of 20-25 m (the tub's took 450-530 frames of 5 cm), half straight
        stretch=(1.0, 1.6),
        arc_radius_m=(1.1, 1.8),  # centre line; the right lane runs 0.33 m inside right-hand curves
        min_radius_m=1.1,
    ),
    look=StyleRanges(
        # The tub's floor is (101, 99, 62) as seen: lit, so the paint is a little brighter.
        floors=(("glossy olive epoxy", (108, 107, 66)),),
        floor_jitter=4.0,
        painted_road=0.0,
        edge_grey=(235.0, 252.0),
        edge_tint=(1.0, 1.0, 0.9),  # the tape's core: (250, 255, 215)
        centre_rgb=((225.0, 250.0), (215.0, 240.0), (70.0, 120.0)),  # the tape's core: (242, 243, 149)
        edge_width_m=(0.045, 0.052),  # 2-inch tape
        centre_width_m=(0.040, 0.050),  # measured 0.045
        dash_m=(0.09, 0.12),  # dashes 0.15-0.25 m apart
        gap_m=(0.08, 0.11),
        grain=(2.0, 5.0),
        blotch=(4.0, 10.0),
        tiles_m=(0.0,),
        brightness=(0.85, 1.1),
        tint=(0.97, 1.03),
        light_falloff=(0.05, 0.2),
        gloss=(0.5, 0.7),  # a fifth of the floor is >= 25 brighter than its median: light streaks
        wall_grey=(45.0, 80.0),  # the room above the floor: median (67, 69, 56)
        ceiling_grey=(20.0, 45.0),
        lights=(8, 12),
        clutter=(35, 60),
        wall_distance_m=(2.5, 4.5),  # the floor ends 8-12 px below the horizon in the tub
        room="warehouse",
    ),
    effects=ImageEffects(noise=2.0, blur=0.6, exposure=0.12),  # floor brightness 0.85-1.24x its median
    # The tub's driver keeps the right lane, takes the left curves on the yellow line and
    # turns in earlier than pure pursuit at 0.45 m would (his angle leads the picture by
    # 3-6 frames): a model trained on this expert scored 0.86x the mean on the real tub
    # where the centre-line-of-the-lane expert scored 1.48x.
    driver=DriverStyle(lane="right", corner_cut_m2=0.7, min_lookahead_m=0.8),
)

PRESETS = {
    "mixed": TrackPreset(name="mixed", shape=ShapeRanges(), look=StyleRanges(), effects=ImageEffects()),
    "warehouse": WAREHOUSE,
}


def driver_options(
    preset: str,
    lane: str | None = None,
    lane_offset_m: float | None = None,
    corner_cut_m2: float | None = None,
) -> dict:
    """The expert's options (`ExpertDriver`'s) on a track of `preset`: its driver's, with
    those given (not None) on top."""
    given = {"lane": lane, "lane_offset_m": lane_offset_m, "corner_cut_m2": corner_cut_m2}
    return {**get_preset(preset).driver.options(), **{k: v for k, v in given.items() if v is not None}}


def get_preset(name: str) -> TrackPreset:
    """The preset called `name`; a clear error listing the others otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown track preset {name!r}; choose one of {sorted(PRESETS)}") from None
