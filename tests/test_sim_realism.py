"""A simulator that looks and drives like the real Donkey track: lanes, presets, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from car.tub import Tub
from sim import ExpertDriver, Simulation, Track
from sim.calibrate import fit_lens, steering_scale, straight_frames
from sim.expert import lane_offset
from sim.presets import get_preset
from sim.tape import tape_masks

REAL_FLOOR_RGB = np.array([101, 99, 62])  # median of the real tub's floor (tubcar calibrate-camera)


def drive_one_lap(track: Track, **expert_options) -> tuple[np.ndarray, Simulation, ExpertDriver]:
    """CTE of every step of one noise-free expert lap (the arc length of each in `sim.s_driven`)."""
    sim = Simulation(track)
    expert = ExpertDriver(track, sim.vehicle, dt=sim.dt, **expert_options)
    ctes, where = [], []
    while sim.laps < 1 and sim.time_s < 120:
        command = expert.command(sim.state)
        observation = sim.step(command.angle, command.throttle, render=False)
        ctes.append(observation.cte)
        where.append(observation.s)
    sim.s_driven = np.array(where)
    return np.array(ctes), sim, expert


# ------------------------------------------------------------------------------ lanes
@pytest.mark.parametrize(("preset", "seed"), [("warehouse", 1), ("warehouse", 4), ("mixed", 2)])
@pytest.mark.parametrize("lane", ["right", "left"])
def test_lane_mode_keeps_the_expert_at_its_offset(preset: str, seed: int, lane: str) -> None:
    track = Track.from_seed(seed, preset)
    ctes, sim, expert = drive_one_lap(track, lane=lane)
    offset = track.width_m / 4 * (1 if lane == "left" else -1)  # the middle of the lane
    assert expert.offset_m == pytest.approx(offset)
    assert sim.laps == 1 and sim.interventions == 0
    error = np.abs(ctes[40:] - offset)  # after pulling over from the centre line at the start
    assert np.median(error) < 0.03, np.median(error)
    assert np.percentile(error, 95) < 0.1, np.percentile(error, 95)
    # Always on its own side of the yellow line.
    assert np.all(np.sign(ctes[40:]) == np.sign(offset))


def test_lane_offset_in_metres_and_its_errors() -> None:
    track = Track.from_seed(3, "warehouse")
    ctes, _, _ = drive_one_lap(track, lane="right", lane_offset_m=0.2)
    assert np.median(ctes[40:]) == pytest.approx(-0.2, abs=0.03)
    assert lane_offset(track, "centre") == 0.0
    with pytest.raises(ValueError, match="lane must be one of"):
        lane_offset(track, "middle")
    with pytest.raises(ValueError, match="lane offset"):
        lane_offset(track, "left", track.width_m)


def test_corner_cutting_moves_the_line_to_the_inside_of_curves() -> None:
    track = Track.from_seed(2, "warehouse")
    plain, plain_sim, _ = drive_one_lap(track, lane="right")
    cut, cut_sim, _ = drive_one_lap(track, lane="right", corner_cut_m2=0.5)
    assert cut_sim.interventions == 0

    def by_curve(ctes: np.ndarray, sim: Simulation) -> tuple[float, float]:
        curvature = track.curvature[[track.index_at(s) for s in sim.s_driven]]
        return float(ctes[curvature > 0.3].mean()), float(ctes[curvature < -0.3].mean())

    (plain_left, plain_right), (cut_left, cut_right) = by_curve(plain, plain_sim), by_curve(cut, cut_sim)
    assert cut_left > plain_left + 0.05  # left curves: towards the yellow line
    assert cut_right < plain_right - 0.05  # right curves: towards the right edge
    assert cut.min() > -track.width_m / 2  # still on the road


def test_the_right_lane_label_steers_for_the_right_lane() -> None:
    """On the centre line of a straight, the right-lane expert's label steers right (+)
    and the centre expert's does not: the label is the command for the chosen lane."""
    track = Track.from_seed(5)
    sim = Simulation(track)
    right = ExpertDriver(track, sim.vehicle, lane="right").command(sim.state).angle
    centre = ExpertDriver(track, sim.vehicle).command(sim.state).angle
    assert right > 0.2 and abs(centre) < 0.05


# ------------------------------------------------------------------------------ presets
def test_warehouse_tracks_are_tight_two_lane_tracks_the_expert_drives() -> None:
    preset = get_preset("warehouse")
    for seed in range(6):
        track = Track.from_seed(seed, "warehouse")
        assert track.name == f"warehouse seed {seed}"
        low, high = preset.shape.road_width_m
        assert low <= track.width_m <= high
        assert 0.9 * preset.shape.min_radius_m < track.min_radius_m < 2.5
        assert 12.0 < track.length < 45.0
        style = track.style
        assert style.room == "warehouse" and 0.045 <= style.edge_width_m <= 0.052
        assert np.abs(np.array(style.floor_rgb) - REAL_FLOOR_RGB).max() <= 12
        _, sim, _ = drive_one_lap(track, **preset.driver.options())  # right lane, corners cut
        assert sim.laps == 1 and sim.interventions == 0, seed
    with pytest.raises(ValueError, match="warehouse"):
        Track.from_seed(1, "forest")


def test_mixed_tracks_keep_their_shapes_and_looks() -> None:
    """The default preset is what seeds were before presets existed: varied rooms, 1.2-1.6 m roads."""
    tracks = [Track.from_seed(seed) for seed in range(8)]
    assert all(track.name == f"seed {seed}" for seed, track in enumerate(tracks))
    assert len({track.style.floor_rgb for track in tracks}) >= 5
    assert all(1.2 <= track.width_m <= 1.6 and track.style.room == "hall" for track in tracks)


def test_warehouse_frames_read_like_real_frames(donkey_tub) -> None:
    """The real tub's own tape detector finds both tapes in simulated warehouse frames, at
    widths like the real ones, on a floor of the real floor's colour."""
    tub = Tub(donkey_tub)
    real = [tub.load_image(record) for record in list(tub.records())[::50]]
    track = Track.from_seed(2, "warehouse")
    sim = Simulation(track, effects=get_preset("warehouse").effects, seed=1)
    expert = ExpertDriver(track, sim.vehicle, lane="right", dt=sim.dt)
    simulated = []
    while sim.laps < 1:
        command = expert.command(sim.state)
        observation = sim.step(command.angle, command.throttle, render=len(simulated) * 10 < sim.time_s * 20)
        if observation.image is not None:
            simulated.append(observation.image.copy())

    def describe(frames: list[np.ndarray]) -> dict:
        floors, yellow, white = [], 0, 0
        for frame in frames:
            masks = tape_masks(frame)
            yellow += masks.yellow[60:].sum() > 30
            white += masks.white[60:].sum() > 30
            floors.append(np.median(frame[70:][~(masks.yellow | masks.white)[70:]], axis=0))
        return {
            "floor": np.median(floors, axis=0),
            "yellow": yellow / len(frames),
            "white": white / len(frames),
        }

    real_look, sim_look = describe(real), describe(simulated)
    assert np.abs(sim_look["floor"] - real_look["floor"]).max() < 20, (sim_look, real_look)
    assert sim_look["yellow"] > 0.7 and sim_look["white"] > 0.7, sim_look


# ------------------------------------------------------------------------------ calibration
def test_straight_frames_are_long_calm_runs_trimmed_at_both_ends() -> None:
    angles = np.concatenate([np.full(10, 0.5), np.zeros(20), np.full(5, -0.4), np.zeros(8), np.full(3, 0.3)])
    assert straight_frames(angles) == list(range(13, 27))


def test_fit_lens_recovers_a_known_barrel_distortion() -> None:
    """Vertical posts and straight floor lines seen through a known lens, with 0.2 px noise:
    the plumb-line fit finds its distortion to within 2.5 px anywhere in the frame, where
    the lens itself moves the corners by 12 px (it reads k1 some 20 % low on these posts)."""
    from sim import CameraModel
    from sim.lens import distort_points, undistort_points

    truth = CameraModel(k1=-0.06, k2=0.0, pitch_deg=15.0)
    rng = np.random.default_rng(0)
    rotation, centre = truth.world_to_camera(0.0, 0.0, 0.0)

    def seen(points: np.ndarray) -> np.ndarray:
        camera_points = (points - centre) @ rotation.T
        pixels = camera_points[camera_points[:, 2] > 0.1] @ truth.intrinsics().T
        pinhole = pixels[:, :2] / pixels[:, 2:3]
        pinhole = pinhole[
            np.all(np.abs(pinhole - truth.principal_point) < (90, 70), axis=1)
        ]  # near the frame
        lens = distort_points(truth, pinhole).reshape(-1, 2)
        inside = (lens[:, 0] > 1) & (lens[:, 0] < 158) & (lens[:, 1] > 1) & (lens[:, 1] < 118)
        return lens[inside] + rng.normal(0, 0.2, (inside.sum(), 2))

    posts = [
        seen(np.array([[x, y, z] for z in np.linspace(0.3, 3.0, 25)]))
        for x in (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
        for y in np.linspace(-9, 9, 30)
    ]
    lines = [
        seen(np.array([[x, y, 0.0] for x in np.linspace(0.5, 4.0, 30)])) for y in (-0.6, -0.3, 0.35, 0.7)
    ]
    fit = fit_lens([p for p in posts if len(p) > 8], [p for p in lines if len(p) > 8], 160, 120)
    # The fitted pixel-level lens moves every pinhole point of the frame where the true lens does.
    columns, rows = np.meshgrid(np.linspace(0, 159, 17), np.linspace(0, 119, 13))
    lens = np.column_stack([columns.ravel(), rows.ravel()])
    pinhole = undistort_points(truth, lens)
    offset = pinhole - truth.principal_point
    r2 = (offset**2).sum(axis=1, keepdims=True)
    fitted = truth.principal_point + offset * (1 + fit.c1 * r2 + fit.c2 * r2**2)
    assert np.abs(fitted - lens).max() < 2.5, np.abs(fitted - lens).max()
    assert np.abs(pinhole - lens).max() > 10.0
    assert fit.residual_px < 0.8 * fit.pinhole_residual_px


def test_steering_scale_from_yaw_per_frame() -> None:
    """Yaw that follows the angle three frames late at 1.4 /m and 5 cm per frame: found."""
    rng = np.random.default_rng(1)
    angles = np.convolve(rng.normal(0, 0.5, 600), np.ones(8) / 8, mode="same")
    yaw = np.zeros(599)
    yaw[3:] = -1.4 * 0.05 * angles[: 599 - 3]
    yaw += rng.normal(0, 0.002, 599)
    found = steering_scale(yaw, angles, step_m=0.05)
    assert found["lag"] == 3 and found["curvature_per_angle"] == pytest.approx(1.4, rel=0.05)


@pytest.mark.slow
def test_calibrate_camera_on_the_real_tub(donkey_tub, capsys) -> None:
    """The whole calibration on the real tub: numbers in the ranges a Donkey car can have
    (the README's table has the exact values)."""
    from tubcar.commands import calibrate_camera

    assert calibrate_camera.main(["--tub", str(donkey_tub), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert -0.3 < result["k1"] < -0.01
    assert 70 < result["fov_deg"] < 110 and 10 < result["pitch_deg"] < 30
    assert 0.15 < result["height_m"] < 0.4 and 0.5 < result["lane_width_m"] < 0.9
    assert 0.3 < result["lane_position"] < 0.7  # the right lane's middle
    assert result["steering_correlation"] < -0.8 and 0.8 < result["curvature_per_angle"] < 2.5
    assert np.abs(np.array(result["floor_rgb"]) - REAL_FLOOR_RGB).max() <= 3
    assert result["lens_residual_px"] < result["pinhole_residual_px"]
