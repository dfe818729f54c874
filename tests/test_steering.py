"""The replay's steering response: fitted on a drive with a known response, it must recover
that response (how far, how late, how gradually each command turns the car)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.steering import FIT_KNOTS, SteeringResponse, fit_steering
from sim.vehicle import VehicleModel, VehicleState

# A car that turns harder right than left (as the real Donkey tub's car does), drifts a
# little left at angle 0, answers 3 records late and slews.
TRUTH = SteeringResponse(FIT_KNOTS, (1.3, 0.7, 0.02, -0.9, -1.5), 3, 0.6, "truth")


def drive(response: SteeringResponse, seed: int = 0, steps: int = 600) -> tuple[np.ndarray, ...]:
    """A driver holding random commands for 0.5-1.5 s each; the measured turns (with noise)
    and step lengths of the car answering with `response`."""
    rng = np.random.default_rng(seed)
    angles: list[float] = []
    while len(angles) < steps:
        angles += [float(rng.uniform(-0.95, 0.95))] * int(rng.integers(10, 30))
    commands = np.array(angles[:steps])
    distances = rng.uniform(0.04, 0.06, steps - 1)
    servo = response.servo(commands[:1])
    turns = np.array([servo.step(a) * d for a, d in zip(commands[:-1], distances, strict=True)])
    turns += rng.normal(0, 0.002, turns.shape)  # what visual odometry adds, about
    return turns, distances, commands


def test_the_fit_recovers_a_known_scale_lag_and_slew() -> None:
    turns, distances, angles = drive(TRUTH)
    fitted = fit_steering(turns, distances, angles, np.ones(len(turns), bool), VehicleModel())
    assert fitted is not None and fitted.source == "fitted on the recorded drive"
    assert fitted.delay_steps == TRUTH.delay_steps and fitted.smoothing == TRUTH.smoothing
    np.testing.assert_allclose(fitted.curvatures, TRUTH.curvatures, atol=0.05)
    assert fitted.r2 is not None and fitted.r2 > 0.95


def test_a_drive_that_never_steers_gives_no_fit() -> None:
    turns = np.zeros(300)
    assert fit_steering(turns, np.full(300, 0.05), np.zeros(301), np.ones(300, bool), VehicleModel()) is None


def test_a_command_acts_after_the_delay_and_slews_in() -> None:
    servo = TRUTH.servo([0.0])
    acting = [servo.step(1.0) for _ in range(12)]
    assert acting[: TRUTH.delay_steps] == [TRUTH.curvature(0.0)] * TRUTH.delay_steps  # still on its way
    slewed = 1 - TRUTH.smoothing ** np.arange(1, 13 - TRUTH.delay_steps)  # first-order approach to 1
    expected = [TRUTH.curvature(float(s)) for s in slewed]
    np.testing.assert_allclose(acting[TRUTH.delay_steps :], expected)
    assert TRUTH.angle_for_curvature(TRUTH.curvature(0.7)) == pytest.approx(0.7)


def test_the_vehicle_models_own_response_drives_as_the_vehicle_model() -> None:
    vehicle = VehicleModel()
    response = SteeringResponse.of_vehicle(vehicle)
    for angle in (-1.0, -0.4, 0.0, 0.25, 0.8):
        by_angle = vehicle.step(VehicleState(speed=1.0), angle, 0.25, 0.05)
        by_curvature = vehicle.drive(VehicleState(speed=1.0), response.curvature(angle), 0.25, 0.05)
        assert by_curvature.yaw == pytest.approx(by_angle.yaw, rel=2e-3, abs=1e-7)
        assert math.hypot(by_curvature.x - by_angle.x, by_curvature.y - by_angle.y) < 1e-5
