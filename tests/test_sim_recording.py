"""Recording expert tubs and the `scripts/sim.py` commands, end to end on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from car import channels
from car.tub import Tub
from evaluation.scoring import expert_pilot, score
from evaluation.video import DriveVideo
from sim import ExpertDriver, Simulation, Track, VehicleState, record_tub

REPO_ROOT = Path(__file__).resolve().parents[1]
SIM_SCRIPT = REPO_ROOT / "scripts" / "sim.py"


@pytest.fixture(scope="module")
def short_track() -> Track:
    """The shortest of a few seeds, to keep recordings quick."""
    return min((Track.from_seed(seed) for seed in (10, 15, 23)), key=lambda track: track.length)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, short_track):
    out = tmp_path_factory.mktemp("sim") / "tub"
    # Noise in steering units: 0.4 strays as far as 0.3 did before the steering scale was
    # calibrated to the real car (angle 1 = 20.6 degrees, not 25).
    summary = record_tub(Simulation(short_track), out, laps=1, noise=0.4, seed=2, progress=False)
    return out, summary


def test_recorded_tub_is_valid_and_complete(recorded, short_track):
    out, summary = recorded
    tub = Tub(out)
    records = list(tub.records(load_images=True))
    assert not tub.problems
    assert len(records) == summary["records"] == len(tub)
    assert summary["laps"] == 1 and summary["interventions"] == 0
    for key in (
        channels.CAMERA_IMAGE,
        channels.USER_ANGLE,
        channels.USER_THROTTLE,
        channels.USER_MODE,
        channels.SIM_X,
        channels.SIM_Y,
        channels.SIM_YAW,
        channels.SIM_SPEED,
        channels.SIM_CTE,
        channels.SIM_TRACK,
    ):
        assert key in tub.inputs
    first = records[0]
    assert first[channels.CAMERA_IMAGE].shape == (120, 160, 3)
    assert first[channels.USER_MODE] == "user" and first[channels.SIM_TRACK] == short_track.name
    assert tub.metadata["track_seed"] == short_track.seed
    stamps = np.array([r["_timestamp_ms"] for r in records])
    assert set(np.diff(stamps)) <= {49, 50, 51}  # 20 Hz in simulated time
    angles = np.array([r[channels.USER_ANGLE] for r in records])
    assert np.all(np.abs(angles) <= 1.0)


def test_recorded_labels_are_the_expert_commands_at_the_recorded_pose(recorded, short_track):
    out, _ = recorded
    expert = ExpertDriver(short_track)
    for record in list(Tub(out).records())[::25]:
        state = VehicleState(
            record[channels.SIM_X],
            record[channels.SIM_Y],
            record[channels.SIM_YAW],
            record[channels.SIM_SPEED],
        )
        expert.reset()
        assert expert.command(state).angle == pytest.approx(record[channels.USER_ANGLE], abs=1e-6)


def test_recordings_contain_recoveries(recorded):
    """With steering noise the car strays, and the labels steer back (+ angle = right,
    + CTE = left of the line)."""
    out, _ = recorded
    records = list(Tub(out).records())
    cte = np.array([r[channels.SIM_CTE] for r in records])
    angle = np.array([r[channels.USER_ANGLE] for r in records])
    assert np.abs(cte).max() > 0.1
    off = np.abs(cte) > 0.08
    assert off.sum() > 10
    assert np.mean(np.sign(angle[off]) == np.sign(cte[off])) > 0.7


def test_drive_video_is_a_playable_mp4(tmp_path):
    sim = Simulation(Track.from_seed(12))
    video = DriveVideo(tmp_path / "drive.mp4", sim)
    result = score(expert_pilot(sim), sim, laps=1, time_limit_s=2.0, on_step=video.write)
    path = video.close()
    capture = cv2.VideoCapture(str(path))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (480, 640, 3)
    assert frames == result["frames"] == 40


def run_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SIM_SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


def test_cli_show_and_drive_the_expert_on_a_saved_track(tmp_path):
    shown = run_sim(
        *("show", "--track", "21", "--floor", "3"),  # seed 21 laid on the wood floor
        *("--out", str(tmp_path / "t.png"), "--save", str(tmp_path / "t.json")),
    )
    assert shown.returncode == 0, shown.stderr
    picture = cv2.imread(str(tmp_path / "t.png"))
    assert picture is not None and picture.shape[1] == 4 * 320
    driven = run_sim(
        "drive", "--model", "expert", "--track", str(tmp_path / "t.json"), "--laps", "1", "--json"
    )
    assert driven.returncode == 0, driven.stderr
    result = json.loads(driven.stdout)
    assert result["laps"] == 1 and result["autonomy"] == 1.0 and result["interventions"] == 0
    assert result["max_cte"] < 0.1 and result["track"] == "seed 21 on wood"
    refused = run_sim("drive", "--model", "expert", "--track", str(tmp_path / "t.json"), "--floor", "1")
    assert refused.returncode == 2 and "a track file keeps its own look" in refused.stderr


def test_cli_records_a_preset_in_its_drivers_lane_and_says_so_in_the_tub(tmp_path):
    from tubcar.commands.sim import main

    main(
        [
            "record",
            "--track",
            "2",
            "--preset",
            "warehouse",
            "--laps",
            "1",
            "--noise",
            "0",
            "--out",
            str(tmp_path / "wh"),
        ]
    )
    tub = Tub(tmp_path / "wh")
    meta = tub.metadata
    assert meta["track_preset"] == "warehouse" and meta["track"] == "warehouse seed 2"
    assert meta["controller"]["lane"] == "right" and meta["controller"]["corner_cut_m2"] == 0.7
    assert meta["camera"]["k1"] == pytest.approx(-0.09) and meta["camera"]["k2"] == 0.0
    assert meta["steering"] == {"wheelbase_m": 0.26, "max_wheel_angle_deg": 20.6}
    right = np.median([r[channels.SIM_CTE] for r in tub.records()])
    main(
        [
            *("record", "--track", "2", "--preset", "warehouse", "--laps", "1", "--noise", "0"),
            *("--lane", "left", "--lane-offset", "0.2", "--corner-cut", "0", "--out", str(tmp_path / "left")),
        ]
    )
    left = Tub(tmp_path / "left")
    assert (
        left.metadata["controller"]["lane"] == "left" and left.metadata["controller"]["lane_offset_m"] == 0.2
    )
    assert right < -0.15 and np.median([r[channels.SIM_CTE] for r in left.records()]) == pytest.approx(
        0.2, abs=0.03
    )


def test_cli_rejects_a_bad_track_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    result = run_sim("drive", "--model", "expert", "--track", str(bad))
    assert result.returncode == 2 and "bad.json" in result.stderr


def test_cli_compare_puts_real_frames_above_simulated_ones(tmp_path, donkey_tub):
    out = tmp_path / "compare.png"
    result = run_sim("compare", "--tub", str(donkey_tub), "--track", "4", "--frames", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(out))
    assert picture.shape == (2 * 120 * 3, 3 * 160 * 3, 3)
    real_top_left = cv2.cvtColor(picture[:360, :480], cv2.COLOR_BGR2RGB)
    first_real = cv2.resize(
        Tub(donkey_tub).load_image(next(Tub(donkey_tub).records())),
        None,
        fx=3,
        fy=3,
        interpolation=cv2.INTER_NEAREST,
    )
    assert np.abs(real_top_left.astype(int) - first_real.astype(int)).mean() < 3  # the horizon line aside
