"""The expert driver: pure pursuit along its lane, slowing for curves.

It steers the rear axle onto an arc through a point `lookahead` metres ahead on its lane
and picks its speed from the sharpest curvature in the next stretch of its lane so the
lateral acceleration stays under `max_lateral_accel`. The lane: `centre` straddles the
yellow centre line; `right` and `left` keep `lane_offset_m` (default: a quarter of the
road, the middle of the lane) to that side of it, as a person on a two-lane track does
(the real tub's driver keeps the right lane, the yellow line on the car's left).
`corner_cut_m2` moves the line it drives towards the inside of curves, by that many
metres per 1/m of curvature (within the road), as people do: the real driver takes the
tub's left curves on the yellow line.

For recording it can add steering noise: a slowly wandering offset (an Ornstein-Uhlenbeck
process) that is applied to the car but NOT to the label, so the car drifts off its lane
and the recorded labels show the expert steering back - the recoveries a model needs to
learn. Once the car is more than `noise_cte_fraction` of the half-width off its lane the
noise stops until the expert has brought it back, so recordings show recoveries, not crashes. The labels are
always the expert's command for its lane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim.track import SPACING_M, Track
from sim.vehicle import VehicleModel, VehicleState

Lane = Literal["centre", "right", "left"]
LANES = ("centre", "right", "left")


@dataclass(frozen=True)
class ExpertCommand:
    """What the expert wants (`angle`, `throttle`: the label) and what it applies to the
    car (`applied_angle`: with the injected `noise` added, clipped to [-1, 1])."""

    angle: float
    throttle: float
    applied_angle: float
    noise: float = 0.0


class ExpertDriver:
    """Pure-pursuit driver for a track; call `command(state)` once per control step."""

    def __init__(
        self,
        track: Track,
        vehicle: VehicleModel = VehicleModel(),
        *,
        max_speed_mps: float = 2.0,
        min_speed_mps: float = 0.8,
        max_lateral_accel: float = 2.0,
        lookahead_s: float = 0.35,
        min_lookahead_m: float = 0.45,
        preview_m: float = 1.5,
        noise: float = 0.0,
        noise_time_s: float = 0.6,
        noise_cte_fraction: float = 0.5,
        lane: Lane = "centre",
        lane_offset_m: float | None = None,
        corner_cut_m2: float = 0.0,
        dt: float = 0.05,
        seed: int = 0,
    ) -> None:
        if noise < 0:
            raise ValueError(f"expert steering noise must be >= 0, got {noise}")
        self.lane, self.corner_cut_m2 = lane, corner_cut_m2
        self.offset_m = lane_offset(track, lane, lane_offset_m)
        self.lane_offset_m = abs(self.offset_m)
        # The line driven: the lane's offset, shifted towards the inside of the curve that
        # is coming (curvature averaged over the next metre), kept 0.15 m inside the road.
        ahead = np.mean([np.roll(track.curvature, -k) for k in range(int(1.0 / SPACING_M))], axis=0)
        limit = max(track.width_m / 2.0 - 0.15, abs(self.offset_m))
        self._line_offset = np.clip(self.offset_m + corner_cut_m2 * ahead, -limit, limit)
        self.track = track
        self.vehicle = vehicle
        self.max_speed_mps = min(max_speed_mps, vehicle.max_speed_mps)
        self.min_speed_mps = min_speed_mps
        self.max_lateral_accel = max_lateral_accel
        self.lookahead_s = lookahead_s
        self.min_lookahead_m = min_lookahead_m
        self.noise = noise
        self.noise_cte_limit_m = noise_cte_fraction * track.width_m / 2.0
        self._noise_decay = math.exp(-dt / noise_time_s)
        self._noise_value = 0.0
        self._rng = np.random.default_rng(seed)
        self._hint: int | None = None
        # Speed the track allows at each centre-line sample: the tightest curve of the lane
        # in the next `preview_m` metres sets it, so the expert brakes before a curve.
        preview = max(1, int(preview_m / SPACING_M))
        lane_curvature = track.curvature / np.maximum(1.0 - self._line_offset * track.curvature, 0.05)
        curvature = np.abs(lane_curvature)
        window = np.max(np.stack([np.roll(curvature, -k) for k in range(0, preview, 2)]), axis=0)
        self._speed_limit = np.clip(
            np.sqrt(max_lateral_accel / np.maximum(window, 1e-6)), min_speed_mps, self.max_speed_mps
        )

    def reset(self) -> None:
        """Forget the position hint and the noise state (after the car was moved)."""
        self._hint = None
        self._noise_value = 0.0

    def command(self, state: VehicleState) -> ExpertCommand:
        """The expert's steering and throttle for `state`, plus the noisy steering to apply."""
        where = self.track.locate(state.x, state.y, self._hint)
        self._hint = where.index
        speed = max(state.speed, 0.0)
        lookahead = max(self.min_lookahead_m, self.lookahead_s * speed)
        # Pure pursuit aims from the rear axle at a point of the lane `lookahead` ahead.
        tx, ty, heading = self.track.pose_at(where.s + lookahead)
        offset = float(self._line_offset[self.track.index_at(where.s + lookahead)])
        tx, ty = tx - offset * math.sin(heading), ty + offset * math.cos(heading)
        dx, dy = tx - state.x, ty - state.y
        alpha = math.atan2(dy, dx) - state.yaw
        distance = max(math.hypot(dx, dy), 1e-6)
        curvature = 2.0 * math.sin(alpha) / distance
        angle = self.vehicle.angle_for_curvature(curvature)
        target = float(self._speed_limit[where.index])
        # Feed-forward for the first-order speed response plus a little feedback.
        throttle = (target + 0.5 * (target - speed)) / self.vehicle.max_speed_mps
        throttle = min(max(throttle, -1.0), 1.0)
        applied, noise = angle, 0.0
        if self.noise > 0:
            self._noise_value = self._noise_value * self._noise_decay + self._rng.normal(
                0.0, self.noise * math.sqrt(1 - self._noise_decay**2)
            )
            if abs(where.cte - self._line_offset[where.index]) > self.noise_cte_limit_m:  # recover
                self._noise_value = 0.0
            noise = self._noise_value
            applied = min(max(angle + noise, -1.0), 1.0)
        return ExpertCommand(angle=angle, throttle=throttle, applied_angle=applied, noise=noise)


def lane_offset(track: Track, lane: str, offset_m: float | None = None) -> float:
    """Signed offset (m, + = left) of a lane's middle from the centre line: 0 for `centre`,
    `offset_m` (default a quarter of the road) to the right or the left otherwise."""
    if lane not in LANES:
        raise ValueError(f"lane must be one of {LANES}, got {lane!r}")
    if lane == "centre":
        return 0.0
    offset = track.width_m / 4.0 if offset_m is None else float(offset_m)
    if not 0.0 <= offset < track.width_m / 2.0:
        raise ValueError(f"lane offset must be in [0, {track.width_m / 2:.2f}) m on this track, got {offset}")
    return offset if lane == "left" else -offset
