"""A record filter saved as a file (the studio's "save filter") and `tubcar train --filter FILE`."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.tub import Tub, TubWriter
from training.cli import add_arguments, record_filter
from training.data import RecordFilter, load_frames

FIELDS = {CAMERA_IMAGE: "image_array", USER_ANGLE: "float", USER_THROTTLE: "float", USER_MODE: "str"}


@pytest.fixture()
def two_session_tub(tmp_path):
    """20 real JPEG records in two sessions: throttles 0.0..0.95, every fifth in mode local."""
    path = tmp_path / "tub"
    rng = np.random.default_rng(0)
    for session in range(2):
        with TubWriter(path, list(FIELDS), list(FIELDS.values())) as writer:
            for i in range(10 * session, 10 * session + 10):
                writer.write(
                    {
                        CAMERA_IMAGE: rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
                        USER_ANGLE: 0.0,
                        USER_THROTTLE: i / 20,
                        USER_MODE: "local" if i % 5 == 0 else "user",
                    }
                )
    return path


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--tub", "t", "--out", "o", *flags])


def test_a_saved_filter_selects_modes_throttles_and_sessions_in_training(two_session_tub, tmp_path):
    sessions = Tub(two_session_tub).sessions
    saved = RecordFilter(modes=("user",), min_throttle=0.1, max_throttle=0.8, sessions=(sessions[1],))
    saved.save(tmp_path / "filter.json")
    rules = record_filter(parse("--filter", str(tmp_path / "filter.json")))
    assert rules == saved
    frames, report = load_frames([two_session_tub], rules, progress=False)
    # session 2 holds throttles 0.50..0.95; 0.50 and 0.75 (mode local) and those above 0.8 go
    assert frames.throttles.tolist() == pytest.approx([0.55, 0.6, 0.65, 0.7, 0.8])
    assert report.filtered["from another session"] == 10
    assert report.filtered["with throttle > 0.8"] == 3
    assert record_filter(
        parse("--filter", str(tmp_path / "filter.json"), "--records", "3:9")
    ).index_range == (
        3,
        9,
    )


def test_a_bad_filter_file_is_refused_naming_the_file_and_field(tmp_path, capsys):
    bad = tmp_path / "filter.json"
    bad.write_text(json.dumps({"format": "tubcar-filter/1", "min_throttle": "fast"}))
    with pytest.raises(SystemExit):
        parse("--filter", str(bad))
    assert f"{bad}: min_throttle" in capsys.readouterr().err
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a record filter"):
        RecordFilter.load(bad)
