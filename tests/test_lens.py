"""The camera's lens model: points and images round-trip, barrel bends lines, the renderer uses it."""

from __future__ import annotations

import numpy as np
import pytest

from car.config import CameraConfig, SteeringConfig
from sim import CameraModel, Simulation, Track, VehicleModel
from sim.lens import distort_image, distort_points, pinhole_view, undistort_image, undistort_points

CAMERAS = [CameraModel(), CameraModel(fov_deg=80.0, k1=-0.2, k2=0.02)]  # the calibrated one, a stronger one


def frame_grid(camera: CameraModel, step: float = 4.0) -> np.ndarray:
    columns, rows = np.meshgrid(np.arange(0, camera.width, step), np.arange(0, camera.height, step))
    return np.column_stack([columns.ravel(), rows.ravel()]).astype(np.float64)


@pytest.mark.parametrize("camera", CAMERAS)
def test_points_round_trip_within_half_a_pixel(camera: CameraModel) -> None:
    lens = frame_grid(camera)
    np.testing.assert_allclose(distort_points(camera, undistort_points(camera, lens)), lens, atol=0.5)
    pinhole = frame_grid(camera)
    np.testing.assert_allclose(undistort_points(camera, distort_points(camera, pinhole)), pinhole, atol=0.5)
    # And in fact far tighter than that: the inverse runs to convergence.
    assert np.abs(distort_points(camera, undistort_points(camera, lens)) - lens).max() < 1e-3


@pytest.mark.parametrize("camera", CAMERAS)
def test_images_round_trip_a_dot_within_half_a_pixel(camera: CameraModel) -> None:
    view = pinhole_view(camera)
    dots = np.array([[20.0, 15.0], [140.0, 100.0], [80.0, 60.0], [25.0, 100.0]])  # lens pixels
    pinhole = np.zeros((view.height, view.width), np.float32)
    at = undistort_points(camera, dots) + (view.principal_point - camera.principal_point)
    for u, v in np.round(at).astype(int):
        pinhole[v - 2 : v + 3, u - 2 : u + 3] = 1.0
    lens = distort_image(camera, pinhole, view)
    assert lens.shape == (camera.height, camera.width)
    for (u, v), dot in zip(np.round(at), dots, strict=True):
        window = np.zeros_like(lens)
        near = np.abs(np.arange(camera.width) - dot[0]) < 8, np.abs(np.arange(camera.height) - dot[1]) < 8
        window[np.ix_(near[1], near[0])] = lens[np.ix_(near[1], near[0])]
        rows, columns = np.indices(lens.shape)
        centre = np.array([(columns * window).sum(), (rows * window).sum()]) / window.sum()
        expected = distort_points(
            camera, np.array([[u, v]]) - (view.principal_point - camera.principal_point)
        )
        np.testing.assert_allclose(centre, expected[0], atol=0.5)
    back = undistort_image(camera, lens, view)
    rows, columns = np.indices(back.shape)
    for u, v in np.round(at):
        window = (np.abs(columns - u) < 8) & (np.abs(rows - v) < 8)
        centre = (
            np.array([(columns * back * window).sum(), (rows * back * window).sum()]) / (back * window).sum()
        )
        np.testing.assert_allclose(centre, [u, v], atol=0.5)


def test_barrel_lens_pulls_the_corners_in_and_bends_straight_lines() -> None:
    camera = CameraModel()
    assert camera.k1 < 0
    centre = camera.principal_point
    corner = np.array([[0.0, 0.0]])
    assert np.linalg.norm(distort_points(camera, corner) - centre) < np.linalg.norm(corner - centre) - 5
    # A straight pinhole line near the top edge bows towards the centre at its ends.
    line = np.column_stack([np.linspace(0, camera.width - 1, 9), np.full(9, 10.0)])
    bent = distort_points(camera, line)
    assert bent[0, 1] > bent[4, 1] + 1 and bent[-1, 1] > bent[4, 1] + 1
    # The pinhole view the renderer draws holds the whole lens frame.
    view = pinhole_view(camera)
    reach = undistort_points(camera, corner) + (view.principal_point - centre)
    assert (reach >= 0).all() and view.focal_px == pytest.approx(camera.focal_px)


def test_a_lens_that_folds_the_frame_over_is_refused() -> None:
    with pytest.raises(ValueError, match=r"k1=-0\.5"):
        CameraModel(k1=-0.5, k2=0.0)
    assert not CameraModel(k1=0.0, k2=0.0).has_lens


def test_car_config_and_simulator_share_one_camera_and_steering() -> None:
    config = CameraConfig()
    camera = CameraModel()
    for name in ("height_m", "pitch_deg", "fov_deg", "forward_m", "k1", "k2", "width", "height"):
        assert getattr(camera, name) == getattr(config, name), name
    tilted = CameraModel.from_config(CameraConfig(pitch_deg=10.0, k1=-0.05), width=320, height=240)
    assert (tilted.pitch_deg, tilted.k1, tilted.width) == (10.0, -0.05, 320)
    steering = SteeringConfig()
    vehicle = VehicleModel()
    assert (vehicle.wheelbase_m, vehicle.max_steer_deg) == (
        steering.wheelbase_m,
        steering.max_wheel_angle_deg,
    )
    assert VehicleModel.from_config(SteeringConfig(max_wheel_angle_deg=30.0)).max_steer_deg == 30.0


def test_renderer_draws_the_edge_tape_where_the_lens_puts_it() -> None:
    track = Track.from_seed(5)  # starts on its longest straight
    sim = Simulation(track)
    frame = sim.render()
    camera = sim.camera
    right_tape = -(track.width_m - track.style.edge_width_m) / 2.0  # the right edge tape, car frame
    for ahead in (1.0, 1.5):
        pinhole = camera.project(np.array([[camera.forward_m + ahead, right_tape]]))
        u, v = np.round(distort_points(camera, pinhole)[0]).astype(int)
        assert 0 <= u < camera.width and 0 <= v < camera.height
        patch = frame[v - 1 : v + 2, u - 1 : u + 2].reshape(-1, 3).astype(int)
        brightest = patch[patch.sum(axis=1).argmax()]
        assert brightest.min() > 170, f"no white tape at ({u}, {v}) {ahead} m ahead: {brightest}"
        # Where a pinhole would have put it, further out, is floor: the lens moved the tape in.
        pu, pv = np.round(pinhole[0]).astype(int)
        if 0 <= pu < camera.width and 0 <= pv < camera.height and abs(pu - u) > 3:
            assert frame[pv, pu].astype(int).min() < 150
