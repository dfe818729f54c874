"""The steering label that goes with a horizontally shifted camera frame.

Shifting the whole frame sideways by `dx` pixels shows what the camera would have seen
had the car been yawed by `psi = atan(dx / f)` against the road (`f` the focal length
in pixels): content moving right (`dx > 0`) means the car points left of the road, so
the label must steer more to the right. This is the "viewpoint transformation" of
PilotNet (Bojarski et al. 2016), reduced to its rotation part; a true lateral offset
also needs parallax, which a uniform shift does not model, so shifts are kept small.

How much to steer: a pure-pursuit driver with look-ahead distance `L` and wheelbase
`b` that points `psi` off the path aims at the look-ahead point and commands the
front-wheel angle `delta = atan(2 b sin(psi) / L)`. Dividing by the largest wheel
angle turns that into the tub's steering units (-1 full left, +1 full right):

    correction(dx) = atan(2 b sin(atan(dx / f)) / L) / delta_max
                  ~= 2 b / (L f delta_max) * dx            (small angles)

We use the linear form, one constant in steering units per pixel (within 3 % of the
exact form up to 8 px). The camera and the car are the car config's (`[camera]` width
and fov_deg, `[steering]` wheelbase_m and max_wheel_angle_deg; defaults: the real Donkey
car, measured by `tubcar calibrate-camera`): f = 79.7 px (160 px, 90.2 degrees without
the lens; the barrel lens leaves the centre's scale as it is), b = 0.26 m, delta_max =
20.6 degrees, and a 0.7 m look-ahead (the simulator's expert at its 2 m/s: 0.35 s
ahead) give 0.0259 per pixel: an 8 px shift (a 5.7 degree yaw) adds 0.21 of full lock to
the label. A human who looks further ahead corrects more gently: pass a smaller
--aug-shift-steer-per-px; `steer_per_pixel_for(config)` gives another car's constant.
"""

from __future__ import annotations

import math

from car.config import CarConfig

LOOKAHEAD_M = 0.7


def steer_per_pixel(focal_px: float, wheelbase_m: float, lookahead_m: float, max_steer_deg: float) -> float:
    """Steering units per pixel of horizontal shift (small-angle pure pursuit, see module doc)."""
    if min(focal_px, wheelbase_m, lookahead_m, max_steer_deg) <= 0:
        raise ValueError("focal length, wheelbase, look-ahead and max steer must all be positive")
    return 2.0 * wheelbase_m / (lookahead_m * focal_px * math.radians(max_steer_deg))


def focal_length_px(width_px: float, fov_deg: float) -> float:
    """Pinhole focal length in pixels from image width and horizontal field of view."""
    return (width_px / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def steer_per_pixel_for(config: CarConfig, lookahead_m: float = LOOKAHEAD_M) -> float:
    """The shift's steering constant for the camera and steering of a car config."""
    camera, steering = config.camera, config.steering
    return steer_per_pixel(
        focal_length_px(camera.width, camera.fov_deg),
        steering.wheelbase_m,
        lookahead_m,
        steering.max_wheel_angle_deg,
    )


DEFAULT_STEER_PER_PX = round(steer_per_pixel_for(CarConfig()), 4)
