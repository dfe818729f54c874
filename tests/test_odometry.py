"""Visual odometry on the floor: frames rendered by the simulator at known poses (its
calibrated lens included) must give back the motion between them."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from evaluation.odometry import VisualOdometry, compose
from evaluation.path import wrap
from sim import CameraModel, Renderer, Track, VehicleState


def _motion(before: tuple[float, float, float], after: tuple[float, float, float]) -> np.ndarray:
    """(forward, left, turn) from pose `before` to pose `after`, in `before`'s car frame."""
    x, y, yaw = before
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = after[0] - x, after[1] - y
    return np.array([c * dx + s * dy, -s * dx + c * dy, wrap(after[2] - yaw)])


def test_odometry_recovers_a_known_motion_within_2_cm_and_half_a_degree_per_frame() -> None:
    track, camera = Track.from_seed(1), CameraModel()  # the real Donkey car's camera and lens
    renderer = Renderer(track, camera)
    poses = []
    for k in range(12):  # along a curve at 1.2 m/s (20 Hz), weaving sideways and in heading
        x, y, yaw = track.pose_at(3.0 + 0.06 * k)
        left = 0.05 * math.sin(k / 3)
        poses.append((x - math.sin(yaw) * left, y + math.cos(yaw) * left, yaw + 0.03 * math.sin(k / 2)))
    frames = [renderer.render(VehicleState(*pose)).copy() for pose in poses]

    motions = VisualOdometry(camera).measure(frames)

    assert len(motions) == len(frames) - 1 and all(m.reliable for m in motions)
    truth = np.array([_motion(a, b) for a, b in pairwise(poses)])
    found = np.array([(m.forward_m, m.left_m, m.turn_rad) for m in motions])
    assert np.abs(found[:, :2] - truth[:, :2]).max() < 0.02  # metres
    assert np.degrees(np.abs(found[:, 2] - truth[:, 2])).max() < 0.5


def test_the_same_picture_twice_is_no_motion() -> None:
    frame = Renderer(Track.from_seed(1), CameraModel()).render(VehicleState(*Track.from_seed(1).pose_at(2.0)))
    (motion,) = VisualOdometry(CameraModel()).measure([frame, frame.copy()])
    assert (motion.forward_m, motion.left_m, motion.turn_rad) == (0.0, 0.0, 0.0)
    assert motion.turn_source == "same picture"


def test_compose_moves_in_the_cars_own_frame() -> None:
    facing_left = np.array([1.0, 2.0, math.pi / 2])
    assert np.allclose(compose(facing_left, (1.0, 0.0, 0.1)), [1.0, 3.0, math.pi / 2 + 0.1])
