"""Replay: the flat-ground warp, recorded paths, open- and closed-loop engines, the CLI.

The warp is checked against the simulator's own renderer (a frame rendered at a pose,
warped to a nearby pose, must match the frame rendered there). Closed-loop behaviour is
checked with a classical lane follower (`YellowLinePilot` steers toward the yellow line):
it can only stay on the road if the warp shows it the consequences of its own steering.
The CLI runs on real TFLite bundles exported by the training code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from car.channels import SIM_X, SIM_Y, SIM_YAW
from car.tub import Tub
from evaluation.path import frame_interval_s, recorded_path
from evaluation.reference import YellowLinePilot
from evaluation.replay import ClosedLoopConfig, closed_loop, open_loop, usable_records
from evaluation.steering import FIT_KNOTS
from evaluation.verdict import advice
from evaluation.warp import warp_frame, warper
from sim import CameraModel, Renderer, Simulation, Track, VehicleState, record_tub
from sim.simulation import OFF_TRACK_MARGIN_M
from sim.vehicle import VehicleModel


def yellowness(image: np.ndarray) -> np.ndarray:
    """(H, W): how much more red+green than blue a pixel has; > 80 on yellow markings."""
    pixels = image.astype(np.int16)
    return (pixels[..., 0] + pixels[..., 1]) // 2 - pixels[..., 2]


class StraightAhead:
    """A pilot that never steers: on a curvy track it must leave the road."""

    def run(self, frame: np.ndarray) -> tuple[float, float]:
        return 0.0, 0.3


@pytest.fixture(scope="module")
def sim_tub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One lap of the expert with steering noise on track seed 1 (about 170 records)."""
    path = tmp_path_factory.mktemp("replay") / "sim_tub"
    record_tub(Simulation(Track.from_seed(1)), path, laps=1, noise=0.3, progress=False)
    return path


# ------------------------------------------------------------------------------ the warp
@pytest.mark.parametrize(
    ("lateral", "heading_deg"), [(0.1, 0.0), (-0.1, 0.0), (0.0, 5.0), (0.0, -5.0), (0.06, -4.0)]
)
def test_warped_frame_matches_the_frame_rendered_at_the_new_pose(lateral: float, heading_deg: float) -> None:
    # The warp is a pinhole's (the lens comes with closed-loop replay on real tubs, issue 15).
    track, camera = (
        Track.from_seed(3),
        CameraModel(height_m=0.25, pitch_deg=22.0, fov_deg=120.0, k1=0.0, k2=0.0),
    )
    renderer = Renderer(track, camera)
    x, y, yaw = track.pose_at(5.0)
    recorded = renderer.render(VehicleState(x, y, yaw)).copy()
    heading = math.radians(heading_deg)
    c, s = math.cos(yaw), math.sin(yaw)
    truth = renderer.render(VehicleState(x - s * lateral, y + c * lateral, yaw + heading)).copy()

    warped = warp_frame(recorded, camera, lateral, heading)

    floor = slice(math.ceil(camera.horizon_row) + 8, camera.height)  # rows clear of the far wall
    warped_error = np.abs(warped[floor].astype(int) - truth[floor]).mean()
    unwarped_error = np.abs(recorded[floor].astype(int) - truth[floor]).mean()
    assert warped_error < 3.0, f"warped floor differs by {warped_error:.2f} grey levels on average"
    assert warped_error < 0.25 * unwarped_error


def test_warp_moves_the_floor_the_right_way_on_a_real_frame(donkey_tub: Path) -> None:
    frame = Tub(donkey_tub).load_image(next(iter(Tub(donkey_tub).records())))
    camera = CameraModel()
    lower = slice(90, 120)

    def yellow_column(image: np.ndarray) -> float:
        return float(np.nonzero(yellowness(image[lower]) > 80)[1].mean())

    centre = yellow_column(frame)
    assert yellow_column(warp_frame(frame, camera, 0.1, 0.0)) > centre + 5  # car moved left
    assert yellow_column(warp_frame(frame, camera, -0.1, 0.0)) < centre - 5
    assert yellow_column(warp_frame(frame, camera, 0.0, math.radians(5))) > centre + 3  # turned left


def test_warp_without_offset_is_the_frame_and_refuses_other_sizes() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert np.array_equal(warp_frame(frame, CameraModel(), 0.0, 0.0), frame)
    with pytest.raises(ValueError, match="80x60"):
        warp_frame(frame[:60, :80], CameraModel(), 0.1, 0.0)


def test_what_the_recorded_frame_never_saw_comes_from_a_neighbouring_frame() -> None:
    # The car turned 20 degrees left of the recorded frame: the left of the new view is
    # missing from it, and a frame recorded a moment earlier, turned further left, saw it.
    track, camera = Track.from_seed(3), CameraModel()  # with the real car's lens
    renderer = Renderer(track, camera)

    def pose(s: float, left: float = 0.0, turn_deg: float = 0.0) -> tuple[float, float, float]:
        x, y, yaw = track.pose_at(s)
        return x - math.sin(yaw) * left, y + math.cos(yaw) * left, yaw + math.radians(turn_deg)

    def seen_from(source: tuple[float, float, float], target: tuple[float, float, float]):
        x, y, yaw = source
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = target[0] - x, target[1] - y
        return c * dx + s * dy, -s * dx + c * dy, target[2] - yaw

    recorded, earlier, new = pose(5.0), pose(4.7, 0.1, 25.0), pose(5.05, 0.1, 20.0)
    frames = {p: renderer.render(VehicleState(*p)).copy() for p in (recorded, earlier, new)}
    sources = [(frames[p], seen_from(p, new)) for p in (recorded, earlier)]
    warp = warper(camera)
    _, seen = warp.warp(*sources[0])
    _, seen_earlier = warp.warp(*sources[1])
    gap = ~seen & seen_earlier
    assert gap.sum() > 2000  # a wedge of the new view, and the earlier frame covers it

    def error_in_gap(fill: str) -> float:
        return float(np.abs(warp.view(sources, fill=fill)[gap].astype(int) - frames[new][gap]).mean())

    assert error_in_gap("neighbours") < 8.0 < error_in_gap("edge")
    assert (warp.view(sources, fill="neighbours") > 0).any(axis=2).all()  # no black wedge left


# ----------------------------------------------------------------------------- the paths
def test_simulator_tub_path_is_the_recorded_pose(sim_tub: Path) -> None:
    records = usable_records(Tub(sim_tub))
    path = recorded_path(records, VehicleModel())
    assert path.source == "sim pose" and path.dt_s == pytest.approx(0.05)
    assert np.allclose(path.poses, [[r[SIM_X], r[SIM_Y], r[SIM_YAW]] for r in records])
    assert path.cte is not None and len(path.cte) == len(records)


def test_dead_reckoning_rebuilds_a_noise_free_drive_from_its_labels(tmp_path: Path) -> None:
    record_tub(Simulation(Track.from_seed(2)), tmp_path / "tub", laps=1, noise=0.0, progress=False)
    records = usable_records(Tub(tmp_path / "tub"))
    truth = np.array([[r[SIM_X], r[SIM_Y]] for r in records])
    without_pose = [{k: v for k, v in r.items() if not k.startswith("sim/")} for r in records]

    path = recorded_path(without_pose, VehicleModel())  # no frames given: the labels

    assert path.source == "labels"
    # The simulator's start pose is not in a real tub: compare in each path's own frame.
    x0, y0, yaw0 = records[0][SIM_X], records[0][SIM_Y], records[0][SIM_YAW]
    c, s = math.cos(yaw0), math.sin(yaw0)
    local = (truth - [x0, y0]) @ np.array([[c, -s], [s, c]])
    assert np.max(np.hypot(*(path.poses[:, :2] - local).T)) < 0.05  # metres, over a whole lap


def test_frame_interval_falls_back_to_the_loop_rate_when_timestamps_are_not_real_time(
    donkey_tub: Path,
) -> None:
    records = list(Tub(donkey_tub).records())  # 1,000 frames stamped within 3.3 s
    assert frame_interval_s(records, rate_hz=20.0) == pytest.approx(0.05)
    stamped = [{"_timestamp_ms": 1000 + 100 * i} for i in range(10)]
    assert frame_interval_s(stamped, rate_hz=20.0) == pytest.approx(0.1)


# ----------------------------------------------------------------------------- open loop
def test_open_loop_scores_every_frame_against_the_mean_baseline(sim_tub: Path) -> None:
    tub = Tub(sim_tub)
    seen = []
    result = open_loop(
        tub, YellowLinePilot(), on_frame=lambda frame, record, p: seen.append(record["_index"])
    )
    metrics = result.metrics()
    angles = np.array([r["user/angle"] for r in usable_records(tub)])
    assert metrics["frames"] == len(angles) == len(seen)
    assert metrics["baseline_steering_mse"] == pytest.approx(np.var(angles))
    assert metrics["steering_mse"] < metrics["baseline_steering_mse"]  # the follower sees the road


# --------------------------------------------------------------------------- closed loop
def _road_config(tub: Tub) -> ClosedLoopConfig:
    return ClosedLoopConfig(road_half_width_m=tub.metadata["track_width_m"] / 2 + OFF_TRACK_MARGIN_M)


def test_off_road_margin_is_the_simulators() -> None:
    sim = Simulation(Track.from_seed(1))
    assert sim.off_track_limit_m == pytest.approx(sim.track.width_m / 2 + OFF_TRACK_MARGIN_M)


def test_closed_loop_tells_a_lane_follower_from_pilots_that_leave_the_road(sim_tub: Path) -> None:
    tub = Tub(sim_tub)
    config = _road_config(tub)
    follower = closed_loop(tub, YellowLinePilot(), CameraModel(), config=config).metrics()
    straight = closed_loop(tub, StraightAhead(), CameraModel(), config=config).metrics()
    wrong = closed_loop(tub, YellowLinePilot(sign=-1.0), CameraModel(), config=config).metrics()

    assert follower["interventions"] == 0 and follower["autonomy"] == 1.0
    assert follower["mean_cte"] < 0.05
    assert straight["interventions"] >= 3 and wrong["interventions"] >= 3
    assert straight["autonomy"] < 0.5 and wrong["autonomy"] < 0.5
    assert follower["mean_cte"] < min(straight["mean_cte"], wrong["mean_cte"])
    assert follower["intervention_rule"] == "road edge"


def test_an_intervention_puts_the_car_back_on_the_recorded_path(sim_tub: Path) -> None:
    result = closed_loop(
        Tub(sim_tub), StraightAhead(), CameraModel(), config=ClosedLoopConfig(max_offset_m=0.3)
    )
    steps = result.steps
    pairs = [(step, steps[k + 1]) for k, step in enumerate(steps[:-1]) if step.intervention]
    assert pairs, "driving straight on a curvy track must need interventions"
    for before, after in pairs:
        assert abs(before.lateral_m) > 0.3 or abs(before.heading_rad) > math.radians(45)
        assert abs(after.lateral_m) < 0.05 and abs(after.heading_rad) < math.radians(3)
    metrics = result.metrics()
    assert metrics["interventions"] == sum(s.intervention for s in steps)
    elapsed = len(steps) * result.dt_s
    assert metrics["autonomy"] == pytest.approx(max(0.0, 1 - 6.0 * metrics["interventions"] / elapsed))


def test_closed_loop_on_a_real_tub_takes_its_path_from_the_pictures(donkey_tub: Path) -> None:
    first_200 = lambda record: record["_index"] < 200  # noqa: E731  (a curve and a straight: enough, and fast)
    result = closed_loop(Tub(donkey_tub), StraightAhead(), CameraModel(), keep=first_200)
    metrics = result.metrics()
    assert metrics["path"] == "pictures" and metrics["intervention_rule"] == "offset from path"
    assert metrics["path_check"]["stretches"] > 0  # dead reckoning of the labels beside it
    assert 0.5 < metrics["recorded_speed_mps"] < 2.0  # measured, not a guessed top speed
    assert metrics["interventions"] > 0  # the real track curves; a pilot that never steers leaves it
    assert 0.0 <= metrics["autonomy"] < 1.0
    assert metrics["max_offset"] >= metrics["mean_offset"] > 0.0
    # The car's steering, fitted on the drive: its commands explain its turns, and it turns
    # harder right than the symmetric default (-0.70/m at half right) says.
    steering = metrics["steering"]
    assert steering["source"] == "fitted on the recorded drive" and steering["r2"] > 0.9
    assert steering["curvatures"][FIT_KNOTS.index(0.5)] < -0.8


def test_the_advice_credits_a_model_that_drives_where_the_follower_needs_help() -> None:
    def reference(straight: float, follower: float) -> dict:
        return {"straight": {"autonomy": straight}, "lane_follower": {"autonomy": follower}}

    assert advice(1.0, reference(0.0, 0.0)).startswith("The model drives this replay")
    assert "cannot judge the model" in advice(0.2, reference(0.0, 0.0))  # then the replay is in doubt
