"""scripts/tub.py as a user runs it: info, check/repair, delete/restore, convert, hist."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from test_tub import corrupt, write_fixture_tub, write_v1_tub

from car.tub import Tub
from car.tub.ranges import parse_index_range

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tub.py"


def tub_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_info_json(tmp_path, donkey_tub):
    path = write_fixture_tub(tmp_path / "tub")
    Tub(path).delete([1, 2])
    result = tub_cli("info", path, donkey_tub, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["records"] == 28 + 1000 and info["deleted"] == 2
    assert len(info["sessions"]) == 1
    assert info["fields"]["user/angle"] == "float" and info["fields"]["cam/image_array"] == "image_array"
    assert -1 <= info["angle"]["min"] <= info["angle"]["mean"] <= info["angle"]["max"] <= 1


def test_check_reports_then_repair_soft_deletes_bad_records(tmp_path):
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    damage = corrupt(path)
    with open(path / "catalog_0.catalog", "ab") as handle:
        handle.write(b'{"_index": 30')
    before = tub_cli("check", path)
    assert before.returncode == 1
    assert before.stdout.count("bad record") == len(damage) + 1  # + the torn line
    repaired = tub_cli("check", path, "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert "torn last line" in repaired.stdout and "soft-deleted" in repaired.stdout
    tub = Tub(path)
    assert tub.deleted_indexes == {3, 4, 8, 10}  # readable lines with a bad image or label
    good = list(tub.records(load_images=True))
    assert len(good) == 30 - len(damage)
    after = tub_cli("check", path)  # only the line that is not JSON at all remains
    assert after.stdout.count("bad record") == 1 and "catalog_0.catalog:12" in after.stdout


def test_delete_and_restore_ranges(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    assert tub_cli("delete", path, "10:20").returncode == 0
    assert Tub(path).deleted_indexes == set(range(10, 20))
    assert tub_cli("restore", path, "15").returncode == 0
    assert Tub(path).deleted_indexes == set(range(10, 20)) - {15}
    bad = tub_cli("delete", path, "ten")
    assert bad.returncode == 2 and "not an index" in bad.stderr


def test_one_range_parser_for_every_command():
    """`tub delete`, `train --records` and `replay --records` read ranges with car.tub.ranges."""
    assert parse_index_range("100:250") == range(100, 250) and parse_index_range("7") == range(7, 8)
    for bad, reason in (("ten", "not an index"), ("5:3", "empty range"), ("1:2:3", "not an index")):
        with pytest.raises(argparse.ArgumentTypeError, match=reason):
            parse_index_range(bad)


def test_convert_and_hist(tmp_path):
    write_v1_tub(tmp_path / "v1")
    converted = tub_cli("convert", tmp_path / "v1", tmp_path / "v2")
    assert converted.returncode == 0, converted.stderr
    assert "5 records (+1 deleted)" in converted.stdout
    again = tub_cli("convert", tmp_path / "v1", tmp_path / "v2")
    assert again.returncode == 2 and "not empty" in again.stderr
    hist = tub_cli("hist", tmp_path / "v2", "--out", tmp_path / "hist.png")
    assert hist.returncode == 0, hist.stderr
    image = cv2.imread(str(tmp_path / "hist.png"))
    assert image is not None and image.shape[1] >= 600


def test_not_a_tub_is_a_clear_error(tmp_path):
    result = tub_cli("info", tmp_path)
    assert result.returncode == 2 and str(tmp_path) in result.stderr and "no tubs" in result.stderr
