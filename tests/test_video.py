"""Videos: the steering/throttle gauge, the simulator's drive video (laps from 1), and
`tubcar movie` on a real recorded tub, with and without a pilot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from car.tub import Tub
from evaluation.movie import make_movie
from evaluation.reference import YellowLinePilot
from evaluation.scoring import score
from evaluation.video import MODEL_COLOUR, RECORDED_COLOUR, DriveVideo, draw_gauge
from sim import Simulation, Track, record_tub
from sim.parts import ExpertPilot
from tubcar import cli


def frames_of(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def marker_columns(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Columns of the pixels close to `colour` (video compression blurs colours a little)."""
    close = np.abs(image.astype(int) - np.array(colour)).sum(axis=-1) < 90
    return np.nonzero(close)[1]


def test_gauge_puts_each_command_where_its_value_says() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    draw_gauge(image, [(-1.0, 0.0, RECORDED_COLOUR), (0.5, 1.0, MODEL_COLOUR), (np.nan, np.nan, (0, 0, 255))])
    size, left = 120, 10  # draw_gauge's defaults: the steering bar spans columns 10-130
    steering_rows = image[-30:]
    recorded = marker_columns(steering_rows, RECORDED_COLOUR)
    model = marker_columns(steering_rows, MODEL_COLOUR)
    assert abs(recorded.mean() - left) <= 3  # full left
    assert abs(model.mean() - (left + 0.75 * size)) <= 3  # half right
    throttle_bar = image[:, left + size : left + size + 40]
    model_rows = np.nonzero(np.abs(throttle_bar.astype(int) - MODEL_COLOUR).sum(axis=-1) < 90)[0]
    recorded_rows = np.nonzero(np.abs(throttle_bar.astype(int) - RECORDED_COLOUR).sum(axis=-1) < 90)[0]
    assert model_rows.mean() < recorded_rows.mean()  # full throttle sits above zero throttle
    assert not (np.abs(image.astype(int) - (0, 0, 255)).sum(axis=-1) < 30).any()  # NaN: no marker


def test_drive_video_counts_laps_from_one(tmp_path: Path) -> None:
    sim = Simulation(Track.from_seed(12))
    video = DriveVideo(tmp_path / "drive.mp4", sim, laps=3)
    assert [video.lap_text(done) for done in (0, 1, 2, 3)] == ["lap 1/3", "lap 2/3", "lap 3/3", "lap 3/3"]
    assert DriveVideo(tmp_path / "other.mp4", sim).lap_text(0) == "lap 1"


def test_drive_video_frames_carry_the_gauge_of_the_steering_driven(tmp_path: Path) -> None:
    sim = Simulation(Track.from_seed(12))
    video = DriveVideo(tmp_path / "drive.mp4", sim, laps=1)
    steps = []

    def on_step(observation) -> None:
        steps.append(observation)
        video.write(observation)

    result = score(ExpertPilot(sim), sim, laps=1, time_limit_s=3.0, on_step=on_step)
    frames = frames_of(video.close())
    assert len(frames) == result["frames"] == len(steps) > 50
    curving = max(range(len(steps)), key=lambda k: abs(steps[k].angle))
    angle = steps[curving].angle
    assert abs(angle) > 0.1
    columns = marker_columns(frames[curving][-30:], RECORDED_COLOUR)
    assert abs(columns.mean() - (10 + (angle + 1) / 2 * 120)) <= 4  # the marker shows the angle driven


@pytest.fixture(scope="module")
def sim_tub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("movie") / "tub"
    record_tub(Simulation(Track.from_seed(5)), path, laps=1, noise=0.3, progress=False)
    return path


def test_movie_of_a_tub_shows_the_driver_and_a_pilot(sim_tub: Path, tmp_path: Path) -> None:
    records = list(Tub(sim_tub).records())
    alone = make_movie(Tub(sim_tub), tmp_path / "alone.mp4", keep=lambda r: r["_index"] < 60)
    assert alone.frames == 60 and alone.fps == pytest.approx(20.0, rel=0.05) and alone.skipped == []
    frames = frames_of(alone.path)
    assert len(frames) == 60 and frames[0].shape[1:] == (480, 3)
    assert frames[0].shape[0] > 360  # the frame 3x, and the caption in a strip below it
    assert not len(marker_columns(frames[30][-30:], MODEL_COLOUR))  # no model: no red marker

    pilot = YellowLinePilot()
    both = make_movie(Tub(sim_tub), tmp_path / "both.webm", pilot, keep=lambda r: r["_index"] < 60)
    frame = frames_of(both.path)[30]
    expected = pilot.run(Tub(sim_tub).load_image(records[30]))[0]
    model = marker_columns(frame[-30:, :200], MODEL_COLOUR)
    assert abs(model.mean() - (10 + (expected + 1) / 2 * 120)) <= 5


def test_movie_command_writes_the_video_it_names(sim_tub: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.mp4"
    assert cli.main(["movie", "--tub", str(sim_tub), "--records", "0:40", "--out", str(out)]) == 0
    assert f"wrote {out}: 40 frames at 20.0 frames/s" in capsys.readouterr().out
    assert len(frames_of(out)) == 40
