"""How the recorded car turned for its steering commands, fitted on its own drive.

Closed-loop replay moves a simulated car by a pilot's steering. On a real tub, how far a
command turns the car is a property of that car (servo travel, linkage, trim, tyres, the
floor), and a guessed geometry is wrong in ways that decide the score: on the Donkey tub
the car turned ~1.75/m per unit of right steering but ~1.40/m per unit of left, and the
symmetric default (1.38/m) could not follow the recorded right hairpin with the recorded
commands, so every pilot that steered as the driver did ran wide.

The path from the pictures (`evaluation.odometry`) gives the turn and the distance of every
step, so the response is fitted from the tub itself (`fit_steering`):

    curvature(step k) = f(command smoothed: s_k = a * s_(k-1) + (1 - a) * angle_(k - delay))

- `delay` (records): the camera, the loop and the servo answer a command late;
- `a` (per record): the servo slews; the turn follows a step of the command gradually;
- `f`: piecewise linear in the command (knots at -1, -0.5, 0, 0.5, 1): a steering that is
  stronger on one side, or saturates, fits; f(0) is the trim's drift. Where the drive has
  no commands near a knot, f stays near the configured vehicle's (a ridge toward it).

The delay and `a` are those (on a grid) whose f best predicts the heading change over
half a metre; that R^2 is printed with the fit, so a user sees how well the car's commands
explain its recorded path; below `MIN_R2` the labels do not explain the turns and the car
config's steering is used. Simulator tubs keep their own exact vehicle (`of_vehicle`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.vehicle import VehicleModel

FIT_KNOTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
_DELAYS = range(11)  # records
_SMOOTHING = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8)  # per-record factor of the servo's first-order lag
_WINDOW_STEPS = 10  # the heading change the fit is judged on: ~0.5 m at 1 m/s and 20 Hz
_PRIOR_WEIGHT = 5.0  # the ridge toward the vehicle's curvature, in steps of median length
# A fit explaining less of the turns is not used (the car config's steering is): on the real
# Donkey tub every 200-record block fits at 0.97-0.99; a simulator tub, whose labels are not
# what steered the car (its recording adds steering noise after the label), at 0.45-0.58.
MIN_R2 = 0.8


@dataclass(frozen=True)
class SteeringResponse:
    """Curvature (1/m, + = left) the car drives for a command (+1 = full right), `delay`
    records late and smoothed by `smoothing` per record (see the module docstring)."""

    knots: tuple[float, ...]  # commands, increasing
    curvatures: tuple[float, ...]  # 1/m at each knot, non-increasing
    delay_steps: int
    smoothing: float
    source: str  # "fitted on the recorded drive" or "vehicle model"
    r2: float | None = None  # of the heading change over ~0.5 m (fitted only)

    @classmethod
    def of_vehicle(cls, vehicle: VehicleModel, delay_steps: int = 0) -> SteeringResponse:
        """The vehicle model's own steering (tabulated finely: exact to 0.1%), no slew."""
        knots = np.linspace(-1.0, 1.0, 41)
        curvatures = [math.tan(vehicle.steer_rad(k)) / vehicle.wheelbase_m for k in knots]
        return cls(tuple(float(k) for k in knots), tuple(curvatures), delay_steps, 0.0, "vehicle model")

    def curvature(self, command: float) -> float:
        """The steady curvature (1/m) of a command held long enough (commands clip to [-1, 1])."""
        if not math.isfinite(command):
            command = 0.0  # a non-finite command is neutral, as in the vehicle model
        return float(np.interp(command, self.knots, self.curvatures))

    def angle_for_curvature(self, curvature: float) -> float:
        """The command that drives a path of signed curvature (1/m, + = left), clipped to [-1, 1]."""
        # np.interp needs increasing x: the curvatures fall as the command rises.
        return float(np.interp(curvature, self.curvatures[::-1], self.knots[::-1]))

    def servo(self, history: Sequence[float] | np.ndarray) -> Servo:
        """The car's steering, as it stands after the recorded commands `history` (oldest first)."""
        return Servo(self, history)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "delay_steps": self.delay_steps,
            "smoothing": round(self.smoothing, 3),
            "curvature_full_left": round(self.curvature(-1.0), 3),
            "curvature_full_right": round(self.curvature(1.0), 3),
            "curvature_centre": round(self.curvature(0.0), 3),
            "knots": [round(k, 3) for k in self.knots] if len(self.knots) <= 9 else None,
            "curvatures": [round(c, 3) for c in self.curvatures] if len(self.knots) <= 9 else None,
            "r2": None if self.r2 is None else round(self.r2, 3),
        }

    def describe(self) -> str:
        """One line: how the car steers, where that comes from, and how well it fits."""
        left, right = self.curvature(-1.0), -self.curvature(1.0)
        line = (
            f"steering ({self.source}): full left {1 / left:.2f} m radius, full right {1 / right:.2f} m"
            if left > 0 and right > 0
            else f"steering ({self.source}): full left {left:.2f}/m, full right {-right:.2f}/m"
        )
        line += f", half left {self.curvature(-0.5):+.2f}/m, half right {self.curvature(0.5):+.2f}/m"
        line += f"; answers {self.delay_steps} records late"
        if self.smoothing > 0:
            line += f", slews with {self.smoothing:.1f} per record"
        if self.r2 is not None:
            line += f"; explains {100 * self.r2:.0f}% of the turns over 0.5 m (R^2)"
        return line


class Servo:
    """Commands in, curvature out: the delay line and the slew of one `SteeringResponse`."""

    def __init__(self, response: SteeringResponse, history: Sequence[float] | np.ndarray) -> None:
        self.response = response
        recent = [float(a) for a in history][-(response.delay_steps + 30) :] or [0.0]
        self._acting = float(np.clip(recent[0], -1.0, 1.0))  # the slewed command acting now
        self._queue: deque[float] = deque([recent[0]] * response.delay_steps)  # sent, not yet acting
        for command in recent:
            self.step(command)

    def step(self, command: float) -> float:
        """Send `command`; the curvature the car drives during this record's step."""
        self._queue.append(command if math.isfinite(command) else 0.0)
        self._slew(self._queue.popleft())
        return self.response.curvature(self._acting)

    def _slew(self, command: float) -> None:
        a = self.response.smoothing
        self._acting = a * self._acting + (1.0 - a) * float(np.clip(command, -1.0, 1.0))


def fit_steering(
    turns: np.ndarray,
    distances: np.ndarray,
    angles: np.ndarray,
    usable: np.ndarray,
    vehicle: VehicleModel,
) -> SteeringResponse | None:
    """The steering response that best explains the measured `turns` (N-1,: rad, + = left)
    over `distances` (N-1,: m) from the recorded `angles` (N,), using the steps `usable`
    (N-1,: measured); None when the drive turns too little to tell or the best fit explains
    less than `MIN_R2` of the heading changes."""
    usable = usable & (distances > 1e-3)
    if usable.sum() < 4 * _WINDOW_STEPS or np.std(angles) < 0.05:
        return None
    prior = np.array([SteeringResponse.of_vehicle(vehicle).curvature(k) for k in FIT_KNOTS])
    step = float(np.median(distances[usable]))
    best: SteeringResponse | None = None
    for delay in _DELAYS:
        for smoothing in _SMOOTHING:
            acting = _acting_commands(angles[: len(turns)], delay, smoothing)
            response = _fit_curve(acting, turns, distances, usable, prior, step)
            r2 = _window_r2(turns, distances, acting, usable, response)
            if best is None or best.r2 is None or r2 > best.r2:
                best = SteeringResponse(
                    FIT_KNOTS,
                    tuple(float(c) for c in response),
                    delay,
                    smoothing,
                    "fitted on the recorded drive",
                    r2,
                )
    return best if best is not None and best.r2 is not None and best.r2 >= MIN_R2 else None


def _acting_commands(angles: np.ndarray, delay: int, smoothing: float) -> np.ndarray:
    """(N,) the slewed command acting at each step: each angle `delay` steps late."""
    delayed = np.concatenate([np.full(delay, angles[0]), angles])[: len(angles)]
    acting, value = np.empty(len(delayed)), float(delayed[0])
    for k, command in enumerate(delayed):
        value = smoothing * value + (1.0 - smoothing) * float(command)
        acting[k] = value
    return acting


def _hats(commands: np.ndarray) -> np.ndarray:
    """(N, K) the piecewise-linear basis: each command's weights on the knots (sum 1)."""
    knots = np.array(FIT_KNOTS)
    clipped = np.clip(commands, knots[0], knots[-1])
    return np.stack([np.interp(clipped, knots, np.eye(len(knots))[j]) for j in range(len(knots))], axis=1)


def _fit_curve(
    acting: np.ndarray,
    turns: np.ndarray,
    distances: np.ndarray,
    usable: np.ndarray,
    prior: np.ndarray,
    step: float,
) -> np.ndarray:
    """Curvatures at the knots: least squares of turn = distance * f(acting), with a ridge
    toward `prior` (knots the drive never used keep the vehicle's), made non-increasing."""
    design = _hats(acting[usable]) * distances[usable, None]
    ridge = _PRIOR_WEIGHT * step**2
    lhs = design.T @ design + ridge * np.eye(len(prior))
    rhs = design.T @ turns[usable] + ridge * prior
    return np.minimum.accumulate(np.linalg.solve(lhs, rhs))


def _window_r2(
    turns: np.ndarray, distances: np.ndarray, acting: np.ndarray, usable: np.ndarray, curve: np.ndarray
) -> float:
    """R^2 of the heading change over `_WINDOW_STEPS` consecutive usable steps."""
    predicted = np.where(usable, _hats(acting) @ curve * distances, 0.0)
    measured = np.where(usable, turns, 0.0)
    window = np.ones(_WINDOW_STEPS)
    truth, guess = np.convolve(measured, window, "valid"), np.convolve(predicted, window, "valid")
    spread = float(np.sum((truth - truth.mean()) ** 2))
    return 1.0 - float(np.sum((truth - guess) ** 2)) / spread if spread > 0 else -math.inf
