"""Error analysis: situations, error shares, worst frames, and the PNGs drawn from real frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from car.tub import Tub
from evaluation import error_analysis as ea


def test_situation_uses_steering_and_off_centre_cte() -> None:
    assert ea.situation(0.0) == "straight"
    assert ea.situation(-0.5) == "curve left"  # steering + is right
    assert ea.situation(0.5) == "curve right"
    assert ea.situation(0.5, cte=0.3) == "off-centre left"  # cte + is left of the centre line
    assert ea.situation(0.0, cte=-0.3) == "off-centre right"
    assert ea.situation(0.0, cte=0.05) == "straight"


def test_error_shares_point_at_the_situation_that_carries_the_error() -> None:
    labels = ["straight"] * 80 + ["curve left"] * 20
    recorded = np.zeros((100, 2))
    predicted = np.zeros((100, 2))
    predicted[:80, 0] = 0.05  # small errors on many straight frames
    predicted[80:, 0] = 0.5  # large errors on few curve frames

    groups = ea.error_by_situation(labels, recorded, predicted)

    assert [g.name for g in groups] == ["curve left", "straight"]
    assert groups[0].frame_share == pytest.approx(0.2)
    assert groups[0].error_share == pytest.approx(20 * 0.25 / (20 * 0.25 + 80 * 0.0025))
    assert sum(g.error_share for g in groups) == pytest.approx(1.0)
    assert groups[1].steering_mse == pytest.approx(0.0025)


def test_worst_frames_are_the_largest_errors_of_each_situation() -> None:
    labels = ["straight", "curve left", "straight", "curve left", "straight"]
    recorded = np.zeros((5, 2))
    predicted = np.array([[0.1, 0], [0.9, 0], [0.4, 0], [0.2, 0], [-0.3, 0]])

    worst = ea.worst_by_situation(labels, recorded, predicted, per_situation=2, spacing=1)

    assert worst["straight"].tolist() == [2, 4]
    assert worst["curve left"].tolist() == [1, 3]


def test_worst_frames_are_spread_over_the_recording() -> None:
    labels = ["straight"] * 30
    recorded = np.zeros((30, 2))
    predicted = np.zeros((30, 2))
    predicted[10:15, 0] = [0.9, 0.95, 1.0, 0.95, 0.9]  # one bad moment, five near-identical frames
    predicted[25, 0] = 0.5  # another, milder one
    worst = ea.worst_by_situation(labels, recorded, predicted, per_situation=2, spacing=10)
    assert worst["straight"].tolist() == [12, 25]


def test_gallery_and_timeline_are_drawn_from_real_frames(donkey_tub: Path, tmp_path: Path) -> None:
    tub = Tub(donkey_tub)
    records = [r for _, r in zip(range(120), tub.records())]
    recorded = np.array([[r["user/angle"], r["user/throttle"]] for r in records])
    predicted = recorded * 0.5
    labels = ea.situations(records, recorded[:, 0])
    groups = ea.error_by_situation(labels, recorded, predicted)
    worst = ea.worst_by_situation(labels, recorded, predicted, per_situation=3)
    frames = {name: [tub.load_image(records[k]) for k in positions] for name, positions in worst.items()}

    gallery = ea.plot_gallery(
        frames,
        recorded,
        predicted,
        worst,
        [r["_index"] for r in records],
        groups,
        tmp_path / "errors.png",
        title="test",
    )
    timeline = ea.plot_timeline(recorded, predicted, tmp_path / "timeline.png")

    for path in (gallery, timeline):
        image = cv2.imread(str(path))
        assert image is not None and image.shape[1] >= 800 and image.std() > 10


def test_steering_lines_are_drawn_where_the_commands_point() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    image = ea.draw_steering(frame, recorded=1.0, predicted=-1.0, scale=2)  # (240, 320, 3)
    red, green = image[..., 0].astype(int), image[..., 1].astype(int)
    green_columns = np.nonzero((green > 150) & (red < 100))[1]
    red_columns = np.nonzero((red > 150) & (green < 100))[1]
    assert green_columns.size > 50 and red_columns.size > 50
    assert green_columns.mean() > 160 > red_columns.mean()  # recorded right, predicted left


def test_replay_video_writes_every_frame(tmp_path: Path) -> None:
    frame = np.full((120, 160, 3), 90, np.uint8)
    with ea.ReplayVideo(tmp_path / "v.mp4", fps=20, scale=2) as video:
        for k in range(15):
            video.add(frame, 0.1 * k / 15, -0.1, text=[f"frame {k}"], alert=k == 3)
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    count = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        k = count
        # The caption sits in a strip below the enlarged frame, not over the picture.
        assert image.shape[1] == 320 and 240 < image.shape[0] < 300
        assert image[240:].max() > 200  # white text on black
        if k != 3:  # (frame 3 has the red border)
            assert np.abs(image[10:40, 10:150].astype(int) - 90).max() < 12  # the picture's corner is clean
        count += 1
    assert count == video.frames == 15
