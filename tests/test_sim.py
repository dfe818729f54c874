"""The simulator: physics, track geometry, laps and interventions, camera, expert, scoring."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from evaluation.scoring import autonomy, camera_pilot, expert_pilot, score
from sim import CameraModel, ExpertDriver, ImageEffects, Simulation, Track, VehicleModel, VehicleState
from sim.style import FLOORS
from sim.track import CLEARANCE_M, MIN_RADIUS_M


def circle_track(radius: float = 3.0, width: float = 1.2, points: int = 400) -> Track:
    """A counter-clockwise circle: its left side is the inside."""
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return Track(np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1), width)


# ------------------------------------------------------------------ vehicle physics
def test_straight_line_speed_follows_throttle_with_first_order_lag():
    model = VehicleModel(max_speed_mps=4.0, throttle_tau_s=0.4)
    state = VehicleState()
    for _ in range(8):  # 0.4 s = one time constant
        state = model.step(state, 0.0, 0.5, 0.05)
    assert state.speed == pytest.approx(2.0 * (1 - math.exp(-1)), rel=1e-6)
    assert state.y == pytest.approx(0.0, abs=1e-12) and state.yaw == pytest.approx(0.0, abs=1e-12)
    for _ in range(200):
        state = model.step(state, 0.0, 0.5, 0.05)
    assert state.speed == pytest.approx(2.0, rel=1e-4)
    x_before = state.x
    state = model.step(state, 0.0, 0.5, 0.05)
    assert state.x - x_before == pytest.approx(0.1, rel=1e-3)


def test_full_right_lock_drives_a_clockwise_circle_of_the_minimum_radius():
    model = VehicleModel(wheelbase_m=0.26, max_steer_deg=25.0)
    radius = 0.26 / math.tan(math.radians(25.0))
    assert model.min_turn_radius_m == pytest.approx(radius)
    state = VehicleState(speed=1.0)
    xs, ys = [], []
    for _ in range(400):
        state = model.step(state, 1.0, 0.25, 0.05)  # steady 1 m/s
        xs.append(state.x)
        ys.append(state.y)
        assert state.speed == pytest.approx(1.0)
    # Steering right turns clockwise: the circle's centre is to the car's right, at (0, -R).
    distance = np.hypot(np.array(xs), np.array(ys) + radius)
    np.testing.assert_allclose(distance, radius, rtol=1e-9)
    # 20 s at 1 m/s is 20 m of arc: the heading turned by -20/R radians.
    expected_yaw = (-20.0 / radius + math.pi) % (2 * math.pi) - math.pi
    assert state.yaw == pytest.approx(expected_yaw, abs=1e-9)


def test_steering_command_for_a_curvature_round_trips():
    model = VehicleModel()
    for curvature in (-1.2, -0.3, 0.0, 0.5, 1.4):  # within the lock: 1 / min_turn_radius_m = 1.45
        angle = model.angle_for_curvature(curvature)
        assert math.tan(model.steer_rad(angle)) / model.wheelbase_m == pytest.approx(curvature)
    assert model.angle_for_curvature(10.0) == -1.0  # beyond the lock: clipped, left is negative


def test_non_finite_commands_are_neutral():
    model = VehicleModel(throttle_tau_s=0.0)
    state = model.step(VehicleState(speed=1.0), float("nan"), 0.5, 0.05)
    assert state.speed == 0.0 and state.yaw == 0.0


# ------------------------------------------------------------------ track geometry
def test_cte_is_signed_and_window_search_matches_full_scan():
    track = circle_track(radius=3.0)
    for angle in np.linspace(0, 2 * np.pi, 37):
        for offset in (-0.3, 0.0, 0.25):
            r = 3.0 + offset
            x, y = r * math.cos(angle), r * math.sin(angle)
            full = track.locate(x, y)
            windowed = track.locate(x, y, hint=(full.index + 10) % len(track))
            # Outside a counter-clockwise circle is the right-hand side: negative CTE.
            assert full.cte == pytest.approx(-offset, abs=2e-3)
            assert windowed.cte == pytest.approx(full.cte) and windowed.s == pytest.approx(full.s)
            along_error = (full.s - angle * 3.0 + track.length / 2) % track.length - track.length / 2
            assert abs(along_error) < 0.02


def test_seeded_tracks_are_deterministic_distinct_and_drivable():
    first, again = Track.from_seed(4), Track.from_seed(4)
    np.testing.assert_array_equal(first.points, again.points)
    assert first.style == again.style and first.width_m == again.width_m
    tracks = [Track.from_seed(seed) for seed in range(12)]
    lengths = {round(t.length, 3) for t in tracks}
    assert len(lengths) == 12, "every seed should give its own track"
    assert len({t.style.floor_rgb for t in tracks}) >= 6
    for track in tracks:
        assert track.min_radius_m > 0.9 * MIN_RADIUS_M > VehicleModel().min_turn_radius_m
        # No two distant parts of the road are closer than the clearance.
        coarse = track.points[::4]
        gap = np.linalg.norm(coarse[:, None] - coarse[None], axis=2)
        n = len(coarse)
        index = np.arange(n)
        along = np.minimum(abs(index[:, None] - index[None]), n - abs(index[:, None] - index[None])) * 0.2
        assert gap[along > 5.0].min() >= track.width_m + CLEARANCE_M - 0.05


def test_a_seed_laid_on_each_floor_keeps_its_shape_and_the_rest_of_its_look():
    """Training laps can span the generator's floors: the seed's own track and look, on floor k."""
    own = Track.from_seed(4)
    on_floors = [Track.from_seed(4, floor=k) for k in range(len(FLOORS))]
    assert own.style in [track.style for track in on_floors]  # its own floor is one of them
    assert len({track.style.floor_rgb for track in on_floors}) == len(FLOORS)
    for (name, _), track in zip(FLOORS, on_floors):
        np.testing.assert_array_equal(track.points, own.points)
        assert replace(track.style, floor_rgb=own.style.floor_rgb, road_rgb=own.style.road_rgb) == own.style
        assert track.name == f"seed 4 on {name}"
    assert Track.from_seed(4, floor=len(FLOORS)).style == on_floors[0].style  # the floors wrap around


def test_seeded_tracks_turn_both_ways():
    """S-bends exist: some seeds turn against the lap's overall direction."""
    both = 0
    for seed in range(12):
        curvature = Track.from_seed(seed).curvature
        both += bool((curvature > 0.2).any() and (curvature < -0.2).any())
    assert both >= 3


def test_track_file_round_trip_and_errors(tmp_path):
    track = Track.from_seed(9)
    path = track.save(tmp_path / "nine.json")
    loaded = Track.load(path)
    np.testing.assert_allclose(loaded.points, track.points, atol=1e-4)
    assert loaded.style == track.style and loaded.width_m == track.width_m and loaded.seed == 9
    broken = tmp_path / "broken.json"
    broken.write_text('{"points": [[0, 0]], ')
    with pytest.raises(ValueError, match=r"broken\.json"):
        Track.load(broken)
    no_width = tmp_path / "no_width.json"
    no_width.write_text('{"points": [[0, 0], [1, 0], [1, 1]]}')
    with pytest.raises(ValueError, match=r"no_width\.json.*width_m"):
        Track.load(no_width)


# ------------------------------------------------------------------ laps and interventions
def test_laps_are_counted_once_per_lap_forwards_only():
    track = circle_track(radius=2.0)
    sim = Simulation(track)
    curvature_angle = sim.vehicle.angle_for_curvature(1 / 2.0)
    for _ in range(40):  # drive backwards over the start line: no lap
        sim.step(-curvature_angle, -0.25, render=False)
    assert sim.laps == 0 and sim.progress < 0
    sim.reset(render=False)
    while sim.time_s < 60 and sim.laps < 2:
        sim.step(curvature_angle, 0.25, render=False)
    assert sim.laps == 2 and sim.interventions == 0
    assert abs(sim.cte) < 0.05
    # 1 m/s after the throttle lag: a lap of 4*pi metres takes a little over 12.6 s, then exactly.
    assert sim.lap_times[0] == pytest.approx(track.length / 1.0 + 0.35, abs=0.15)
    assert sim.lap_times[1] == pytest.approx(track.length / 1.0, abs=0.06)


def test_leaving_the_road_is_an_intervention_and_the_car_is_put_back():
    track = circle_track(radius=3.0, width=1.0)
    sim = Simulation(track, off_track_margin_m=0.1)
    observation = sim.reset(render=False)
    steps = 0
    while not observation.intervened:
        observation = sim.step(-1.0, 0.4, render=False)  # full left: cuts inside the circle
        steps += 1
        assert steps < 200
    assert observation.cte > 0.6  # beyond half width + margin, on the left
    assert sim.interventions == 1
    where = track.locate(sim.state.x, sim.state.y)
    assert abs(where.cte) < 1e-6 and sim.state.speed == 0.0
    assert sim.time_s == pytest.approx(steps * sim.dt)
    assert abs(((sim.state.yaw - where.heading) + math.pi) % (2 * math.pi) - math.pi) < 1e-6


def test_autonomy_follows_pilotnet():
    assert autonomy(0, 100.0) == 1.0
    assert autonomy(1, 600.0) == pytest.approx(0.99)
    assert autonomy(50, 60.0) == 0.0


# ------------------------------------------------------------------ expert and scoring
def test_expert_drives_many_seeds_without_intervention():
    for seed in range(100, 120):
        sim = Simulation(Track.from_seed(seed))
        result = score(expert_pilot(sim), sim, laps=1, render=False)
        assert result["completed"] and result["interventions"] == 0 and result["autonomy"] == 1.0, (
            seed,
            result,
        )
        assert result["max_cte"] < 0.1, (seed, result)
        assert result["mean_speed_mps"] > 1.0


def test_expert_noise_moves_the_car_but_not_the_label():
    track = Track.from_seed(3)
    quiet = ExpertDriver(track)
    noisy = ExpertDriver(track, noise=0.3, seed=1)
    sim = Simulation(track)
    applied_minus_label, labels_match = [], True
    for _ in range(200):
        command = noisy.command(sim.state)
        clean = quiet.command(sim.state)
        labels_match &= command.angle == pytest.approx(clean.angle) and command.throttle == clean.throttle
        applied_minus_label.append(command.applied_angle - command.angle)
        sim.step(command.applied_angle, command.throttle, render=False)
    assert labels_match
    assert np.std(applied_minus_label) > 0.1


def test_score_reports_the_issue_keys():
    sim = Simulation(Track.from_seed(2))
    result = score(expert_pilot(sim), sim, laps=1, render=False)
    for key in ("laps", "autonomy", "interventions", "mean_cte", "max_cte", "lap_times_s", "frames_per_s"):
        assert key in result
    assert result["laps"] == 1 and len(result["lap_times_s"]) == 1
    assert result["elapsed_s"] == pytest.approx(result["lap_times_s"][0])


def test_time_limit_stops_a_pilot_that_never_moves():
    sim = Simulation(circle_track())
    result = score(camera_pilot(lambda frame: (0.0, 0.0)), sim, laps=1, time_limit_s=2.0, render=False)
    assert not result["completed"] and result["laps"] == 0 and result["elapsed_s"] == pytest.approx(2.0)


def test_a_car_that_stands_still_is_a_stall_every_six_seconds_and_scores_no_autonomy():
    sim = Simulation(circle_track())
    result = score(camera_pilot(lambda frame: (0.0, 0.0)), sim, laps=1, time_limit_s=60.0, render=False)
    assert result["stalls"] == 10 and result["off_road"] == 0 and result["interventions"] == 10
    assert result["autonomy"] < 0.01  # 10 x 6 s of a person's time in 60 s
    crawling = score(
        camera_pilot(lambda frame: (0.0, 0.02)),
        Simulation(circle_track()),
        laps=1,
        time_limit_s=60.0,
        render=False,
    )
    assert crawling["stalls"] == 0  # 0.08 m/s moves well over 0.2 m in 6 s: slow, but driving


def test_after_leaving_the_road_the_pilot_sees_where_the_car_was_put_back():
    sim = Simulation(circle_track())
    seen = []  # (frame, pose, cte, interventions so far) at each call of the pilot

    def hard_left(frame):  # off the inside of the circle within a few seconds
        seen.append((frame.copy(), sim.state, sim.cte, sim.interventions))
        return -1.0, 0.6

    result = score(camera_pilot(hard_left), sim, laps=1, time_limit_s=8.0)
    after = [now for before, now in itertools.pairwise(seen) if now[3] > before[3]]
    assert result["off_road"] >= 1 and len(after) == result["off_road"]
    for frame, state, cte, _ in after:
        assert abs(sim.track.locate(state.x, state.y).cte) < 1e-6 and cte == 0.0
        assert state.speed == 0.0
        sim.state = state
        np.testing.assert_array_equal(frame, sim.render())  # the frame is taken where it was put
    assert result["max_cte"] > sim.off_track_limit_m  # the score keeps how far it went


# ------------------------------------------------------------------ camera
def test_camera_geometry_projects_the_floor_consistently():
    camera = CameraModel(height_m=0.25, pitch_deg=22.0, fov_deg=120.0, k1=0.0, k2=0.0)
    ahead = camera.project(np.array([[camera.forward_m + 1.0, 0.0], [camera.forward_m + 1e4, 0.0]]))
    assert ahead[0, 0] == pytest.approx((camera.width - 1) / 2)  # straight ahead: centre column
    assert ahead[1, 1] == pytest.approx(camera.horizon_row, abs=0.05)  # far away: the horizon
    to_left = camera.project(np.array([[1.0, 0.3]]))[0]
    assert to_left[0] < (camera.width - 1) / 2  # left of the car: left of the image
    behind = camera.project(np.array([[-1.0, 0.0]]))[0]
    assert np.isnan(behind).all()
    # A 1 m floor point seen from a pose: image_to_ground inverts ground_to_image.
    pose = (2.0, -1.0, 0.7)
    pixel = camera.ground_to_image(*pose) @ np.array([2.5, -0.2, 1.0])
    ground = camera.image_to_ground(*pose) @ pixel
    np.testing.assert_allclose(ground[:2] / ground[2], [2.5, -0.2], atol=1e-9)


def yellow_columns(image: np.ndarray) -> np.ndarray:
    """Columns of strongly yellow pixels in the lower half of an RGB frame."""
    lower = image[image.shape[0] // 2 :].astype(int)
    yellow = (lower[:, :, 0] > 150) & (lower[:, :, 1] > 110) & (lower[:, :, 2] < 110)
    return np.nonzero(yellow)[1]


def test_render_shows_the_centre_line_where_the_geometry_says():
    track = Track.from_seed(5)
    sim = Simulation(track)
    sim.reset(render=False)
    frame = sim.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    centred = yellow_columns(frame).mean()
    assert abs(centred - 79.5) < 12
    # Move the car 0.3 m left of the centre line: the yellow line moves right in the image.
    x, y, heading = track.pose_at(0.0)
    sim.state = replace(sim.state, x=x - 0.3 * math.sin(heading), y=y + 0.3 * math.cos(heading))
    assert yellow_columns(sim.render()).mean() > centred + 20
    # The room above the floor line is not floor.
    assert 0 < sim.renderer.floor_row < 60


def test_render_is_deterministic_and_differs_between_seeds():
    frames = []
    for seed in (6, 6, 7):
        sim = Simulation(Track.from_seed(seed))
        sim.reset(render=False)
        frames.append(sim.render().copy())
    np.testing.assert_array_equal(frames[0], frames[1])
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 10


def test_image_effects_change_the_frame():
    track = Track.from_seed(8)
    clean = Simulation(track).render().copy()
    noisy = Simulation(track, effects=ImageEffects(noise=8.0, blur=0.8, exposure=0.2), seed=3).render()
    difference = np.abs(clean.astype(int) - noisy.astype(int))
    assert 2 < difference.mean() < 40


def test_a_pilot_that_only_sees_the_camera_can_drive_a_lap():
    """Closed loop through the renderer: steer towards the yellow centre line."""
    track = Track.from_seed(11)
    sim = Simulation(track)

    def follow_yellow(frame: np.ndarray) -> tuple[float, float]:
        columns = yellow_columns(frame)
        if len(columns) == 0:
            return 0.0, 0.3
        return float(np.clip((columns.mean() - 79.5) / 30.0, -1, 1)), 0.3

    result = score(camera_pilot(follow_yellow), sim, laps=1)
    assert result["completed"] and result["interventions"] == 0, result
