"""Kinematic bicycle model of a 1/10 RC car, commanded like the real one.

Commands are the car's own: steering and throttle in [-1, 1], steering +1 = full RIGHT
(Donkeycar's convention, the same sign as `user/angle` in real tubs). The world frame is
metric, x east, y north, yaw counter-clockwise from +x, so steering right turns yaw down.

The reference point is the centre of the rear axle, where the kinematic bicycle model is
exact: x' = v cos(yaw), y' = v sin(yaw), yaw' = v tan(delta) / wheelbase. Throttle sets a
target speed (throttle * max_speed; negative drives backwards) that the speed follows with
a first-order lag, which is what an ESC plus motor does at this scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from car.config import SteeringConfig

_STEERING = SteeringConfig()  # the defaults below


@dataclass(frozen=True)
class VehicleState:
    """Pose and speed of the car: rear-axle centre (m), heading (rad), forward speed (m/s)."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    speed: float = 0.0


@dataclass(frozen=True)
class VehicleModel:
    """Geometry and response of the car. Steering: the car config's `[steering]` defaults,
    the real Donkey tub's scale (`tubcar calibrate-camera`: angle 1 drives a 0.69 m circle)."""

    wheelbase_m: float = _STEERING.wheelbase_m
    max_steer_deg: float = _STEERING.max_wheel_angle_deg  # front-wheel angle at angle +-1
    max_speed_mps: float = 4.0
    throttle_tau_s: float = 0.35

    @classmethod
    def from_config(cls, steering: SteeringConfig, **overrides: float) -> VehicleModel:
        """The vehicle a car config's `[steering]` section describes."""
        return cls(
            **{
                "wheelbase_m": steering.wheelbase_m,
                "max_steer_deg": steering.max_wheel_angle_deg,
                **overrides,
            }
        )

    def __post_init__(self) -> None:
        if self.wheelbase_m <= 0 or self.max_speed_mps <= 0:
            raise ValueError("VehicleModel wheelbase_m and max_speed_mps must be positive")
        if not 0 < self.max_steer_deg < 60:
            raise ValueError(f"VehicleModel max_steer_deg must be in (0, 60), got {self.max_steer_deg}")
        if self.throttle_tau_s < 0:
            raise ValueError("VehicleModel throttle_tau_s must be >= 0")

    @property
    def min_turn_radius_m(self) -> float:
        """Radius of the tightest circle the rear axle can drive at full lock."""
        return self.wheelbase_m / math.tan(math.radians(self.max_steer_deg))

    def steer_rad(self, angle: float) -> float:
        """Command in [-1, 1] (+ = right) -> front-wheel angle in radians (+ = left, CCW)."""
        return -_clip(angle) * math.radians(self.max_steer_deg)

    def angle_for_curvature(self, curvature: float) -> float:
        """The steering command that drives a path of signed curvature (1/m, + = left)."""
        steer = math.atan(curvature * self.wheelbase_m)
        return _clip(-steer / math.radians(self.max_steer_deg))

    def step(self, state: VehicleState, angle: float, throttle: float, dt: float) -> VehicleState:
        """Advance `state` by `dt` seconds under the commands; returns the new state."""
        if not (math.isfinite(angle) and math.isfinite(throttle)):
            angle, throttle = 0.0, 0.0  # a non-finite command is treated as neutral
        return self.drive(state, math.tan(self.steer_rad(angle)) / self.wheelbase_m, throttle, dt)

    def drive(self, state: VehicleState, curvature: float, throttle: float, dt: float) -> VehicleState:
        """Advance `state` by `dt` seconds on a path of `curvature` (1/m, + = left): the
        step for a steering known by the curvature it drives (a replay's fitted steering).

        Speed follows the throttle exactly for a first-order system held constant over
        dt (no Euler error), and the pose integrates the arc at the mean speed.
        """
        if not (math.isfinite(curvature) and math.isfinite(throttle)):
            curvature, throttle = 0.0, 0.0
        target = _clip(throttle) * self.max_speed_mps
        if self.throttle_tau_s > 0:
            decay = math.exp(-dt / self.throttle_tau_s)
            speed = target + (state.speed - target) * decay
        else:
            speed = target
        distance = 0.5 * (state.speed + speed) * dt
        turn = distance * curvature
        if abs(turn) < 1e-9:
            x = state.x + distance * math.cos(state.yaw)
            y = state.y + distance * math.sin(state.yaw)
        else:  # exact arc of radius 1/curvature
            radius = 1.0 / curvature
            x = state.x + radius * (math.sin(state.yaw + turn) - math.sin(state.yaw))
            y = state.y - radius * (math.cos(state.yaw + turn) - math.cos(state.yaw))
        yaw = _wrap_angle(state.yaw + turn)
        return replace(state, x=x, y=y, yaw=yaw, speed=speed)


def _clip(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else float(value)


def _wrap_angle(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
