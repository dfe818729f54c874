"""Tub writer and reader: layout, round trips, Donkeycar compatibility, bad input."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import donkeycar_tool as fixture  # tests/fixtures, on pytest's pythonpath: the tool that made the fixtures
import numpy as np
import pytest

from car.tub import Tub, TubError, TubWriter, open_tubs
from car.tub.convert import convert_v1_to_v2

FIXTURES = Path(__file__).parent / "fixtures"


def write_fixture_tub(path: Path, max_catalog_len: int = 12) -> Path:
    with TubWriter(path, fixture.INPUTS, fixture.TYPES, max_catalog_len=max_catalog_len) as writer:
        for index in range(fixture.RECORDS):
            assert writer.write(fixture.fixture_record(index)) == index
    return path


def assert_image_close(decoded: np.ndarray, original: np.ndarray) -> None:
    assert decoded.shape == original.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - original).mean() < 4, "JPEG round trip changed the image"


def test_round_trip_keeps_every_type(tmp_path):
    tub = Tub(write_fixture_tub(tmp_path / "tub"))
    records = list(tub.records(load_images=True))
    assert len(records) == fixture.RECORDS and not tub.problems
    for record in records:
        original = fixture.fixture_record(record["_index"])
        assert record["user/angle"] == pytest.approx(original["user/angle"])
        assert record["user/mode"] == original["user/mode"]
        assert record["lap"] == original["lap"] and isinstance(record["lap"], int)
        assert record["on_track"] is original["on_track"]
        np.testing.assert_allclose(record["imu/acl"], original["imu/acl"])
        assert_image_close(record["cam/image_array"], original["cam/image_array"])
        assert re.fullmatch(r"\d\d-\d\d-\d\d_0", record["_session_id"])
        assert isinstance(record["_timestamp_ms"], int)


def test_layout_is_donkeycar_v2(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    lines = (path / "manifest.json").read_text().splitlines()
    assert len(lines) == 5
    inputs, types, _metadata, manifest_metadata, catalogs = map(json.loads, lines)
    assert (inputs, types) == (fixture.INPUTS, fixture.TYPES)
    assert manifest_metadata["sessions"]["all_full_ids"] == [manifest_metadata["sessions"]["last_full_id"]]
    assert catalogs == {
        "paths": ["catalog_0.catalog", "catalog_1.catalog", "catalog_2.catalog"],
        "current_index": 30,
        "max_len": 12,
        "deleted_indexes": [],
    }
    for number, start in enumerate((0, 12, 24)):
        catalog = path / f"catalog_{number}.catalog"
        raw_lines = catalog.read_bytes().splitlines(keepends=True)
        catalog_manifest = json.loads((path / f"catalog_{number}.catalog_manifest").read_text())
        assert catalog_manifest["line_lengths"] == [len(line) for line in raw_lines]
        assert catalog_manifest["start_index"] == start and catalog_manifest["path"] == catalog.name
        first = json.loads(raw_lines[0])
        assert list(first) == sorted(first), "catalog keys must be sorted"
        assert first["cam/image_array"] == f"{start}_cam_image_array_.jpg"
    assert (path / "images" / "29_cam_image_array_.jpg").exists()


def test_reads_tub_written_by_donkeycar():
    tub = Tub(FIXTURES / "donkeycar_v2_tub")
    records = list(tub.records(load_images=True))
    assert [r["_index"] for r in records] == [i for i in range(fixture.RECORDS) if i not in fixture.DELETED]
    assert not tub.problems
    for record in records:
        original = fixture.fixture_record(record["_index"])
        assert record["user/throttle"] == pytest.approx(original["user/throttle"])
        assert record["on_track"] is original["on_track"]
        assert_image_close(record["cam/image_array"], original["cam/image_array"])
    assert len(list(tub.records(include_deleted=True))) == fixture.RECORDS


def assert_donkeycar_saw_what_we_wrote(seen_by_donkeycar: dict, path: Path) -> None:
    """`seen_by_donkeycar`: Donkeycar's reading of our tub at `path` (donkeycar_tool.py read)."""
    ours = list(Tub(path).records())
    assert seen_by_donkeycar["len"] == len(ours) == fixture.RECORDS - len(fixture.DELETED)
    volatile = ("_timestamp_ms", "_session_id")
    for theirs, mine in zip(seen_by_donkeycar["records"], ours, strict=True):
        mine = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in mine.items()}
        assert {k: v for k, v in theirs.items() if k not in volatile} == {
            k: v for k, v in mine.items() if k not in volatile
        }


def test_donkeycar_read_our_tub_as_we_wrote_it(tmp_path):
    """Donkeycar's own reader was run on a tub our writer made (tests/fixtures/donkeycar_tool.py
    read); our writer must still produce exactly what it read. The live twin is below."""
    path = write_fixture_tub(tmp_path / "tub")
    Tub(path).delete(fixture.DELETED)
    assert_donkeycar_saw_what_we_wrote(
        json.loads((FIXTURES / "ours_read_by_donkeycar.json").read_text()), path
    )


def test_reads_the_real_donkey_tub(donkey_tub):
    tub = Tub(donkey_tub)
    records = list(tub.records(load_images=True))
    assert len(records) == 1000 and not tub.problems, tub.problems[:3]
    assert records[0]["cam/image_array"].shape == (120, 160, 3)
    assert records[0]["user/angle"] == pytest.approx(0.2986039775370604)
    assert {r["user/mode"] for r in records} == {"user"}
    assert "timestamp" in tub.inputs  # legacy field declared in the early v2 manifest
    assert (donkey_tub / "._catalog_0.catalog").exists()  # the macOS stray file is ignored


def test_reopen_appends_in_a_new_session(tmp_path):
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    with TubWriter(path) as writer:
        assert writer.write(fixture.fixture_record(0)) == fixture.RECORDS
    tub = Tub(path)
    records = list(tub.records())
    assert [r["_index"] for r in records] == list(range(fixture.RECORDS + 1))
    assert len(tub.sessions) == 2 and records[-1]["_session_id"] == tub.sessions[1]


def test_reopen_with_other_fields_is_refused(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    with pytest.raises(TubError, match=r"manifest.json.*cannot append"):
        TubWriter(path, ["cam/image_array"], ["image_array"])


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_writing_non_finite_labels_is_refused(tmp_path, value):
    with TubWriter(tmp_path / "tub", ["user/angle"], ["float"]) as writer:
        writer.write({"user/angle": 0.5})
        with pytest.raises(ValueError, match="user/angle"):
            writer.write({"user/angle": value})
        with pytest.raises(ValueError, match="does not declare"):
            writer.write({"user/angel": 0.1})
    assert [r["user/angle"] for r in Tub(tmp_path / "tub").records()] == [0.5]


def test_empty_tub_opens(tmp_path):
    TubWriter(tmp_path / "tub", ["user/angle"], ["float"]).close()
    tub = Tub(tmp_path / "tub")
    assert len(tub) == 0 and list(tub.records(load_images=True)) == [] and not tub.problems


def test_torn_last_line_is_repaired_on_reopen(tmp_path):
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    catalog = path / "catalog_0.catalog"
    with open(catalog, "ab") as handle:
        handle.write(b'{"_index": 30, "user/ang')  # a write cut short by a crash
    reader = Tub(path)
    assert len(list(reader.records())) == fixture.RECORDS
    assert len(reader.problems) == 1 and f"{catalog}:31" in str(reader.problems[0])

    with TubWriter(path) as writer:
        assert any("torn last line" in message for message in writer.repairs)
        assert writer.write(fixture.fixture_record(1)) == 30
    tub = Tub(path)
    assert [r["_index"] for r in tub.records()] == list(range(31)) and not tub.problems


def test_a_garbage_first_catalog_line_is_skipped_and_reopening_still_repairs(tmp_path):
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    catalog = path / "catalog_0.catalog"
    lines = catalog.read_text().splitlines(keepends=True)
    catalog.write_text("garbage\n" + "".join(lines[1:]))
    (path / "manifest.json").write_text(
        (path / "manifest.json").read_text().replace('"current_index": 30', '"current_index": 3')
    )
    with TubWriter(path) as writer:
        assert any("rebuilt from the catalogs" in message for message in writer.repairs)
        assert writer.write(fixture.fixture_record(0)) == 30
    tub = Tub(path)
    assert [r["_index"] for r in tub.records()] == list(range(1, 31))
    assert len(tub.problems) == 1 and f"{catalog}:1" in str(tub.problems[0])


@pytest.mark.parametrize(
    "line5", ['["not", "an", "object"]', '{"paths": ["catalog_0.catalog"], "current_index": "many"}']
)
def test_a_malformed_manifest_line_5_is_an_error_naming_the_file(tmp_path, line5):
    path = write_fixture_tub(tmp_path / "tub")
    lines = (path / "manifest.json").read_text().splitlines()
    (path / "manifest.json").write_text("\n".join([*lines[:4], line5]) + "\n")
    with pytest.raises(TubError, match=r"manifest.json:5"):
        Tub(path)


def corrupt(path: Path) -> dict[int, str]:
    """Damage a 30-record tub in every way the reader must survive; returns index -> damage."""
    images = path / "images"
    (images / "3_cam_image_array_.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (images / "4_cam_image_array_.jpg").unlink()
    big = cv2.imencode(".jpg", np.zeros((240, 320, 3), np.uint8))[1].tobytes()
    (images / "8_cam_image_array_.jpg").write_bytes(big)
    catalog = path / "catalog_0.catalog"
    lines = catalog.read_text().splitlines(keepends=True)
    lines[10] = lines[10].replace('"user/angle": ', '"user/angle": NaN, "x": ', 1)
    lines[11] = "this is not json\n"
    catalog.write_text("".join(lines))
    return {
        3: "not a decodable JPEG",
        4: "missing",
        8: "is 320x240",
        10: "user/angle is nan",
        11: "not valid JSON",
    }


def test_bad_records_are_skipped_counted_and_named(tmp_path):
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    damage = corrupt(path)
    tub = Tub(path)
    records = list(tub.records(load_images=True))
    assert [r["_index"] for r in records] == [i for i in range(30) if i not in damage]
    assert len(tub.problems) == len(damage)
    for problem, (index, reason) in zip(tub.problems, sorted(damage.items()), strict=True):
        assert problem.file.endswith("catalog_0.catalog") and problem.line == index + 1
        assert reason in problem.reason


def test_unknown_field_type_is_reported_and_the_field_ignored(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    manifest = (path / "manifest.json").read_text().splitlines()
    manifest[1] = manifest[1].replace('"boolean"', '"hologram"')
    (path / "manifest.json").write_text("\n".join(manifest) + "\n")
    tub = Tub(path)
    records = list(tub.records())
    assert len(records) == 30 and "on_track" not in records[0]
    assert len(tub.problems) == 1 and "hologram" in str(tub.problems[0])


def test_delete_and_restore(tmp_path):
    tub = Tub(write_fixture_tub(tmp_path / "tub"))
    tub.delete(range(10, 20))
    assert len(tub) == 20 and Tub(tub.path).deleted_indexes == set(range(10, 20))
    tub.restore([12, 13])
    assert [r["_index"] for r in Tub(tub.path).records()][10:13] == [12, 13, 20]


def write_v1_tub(path: Path, count: int = 6) -> Path:
    """A Donkeycar v1 tub: meta.json, record_N.json, images in the root, exclude.json."""
    path.mkdir()
    (path / "meta.json").write_text(
        json.dumps(
            {
                "inputs": ["cam/image_array", "user/angle", "user/throttle", "user/mode"],
                "types": ["image_array", "float", "float", "str"],
            }
        )
    )
    for index in range(1, count + 1):
        name = f"{index}_cam-image_array_.jpg"
        cv2.imwrite(str(path / name), fixture.fixture_image(index)[:, :, ::-1])
        record = {
            "cam/image_array": name,
            "user/angle": index / 10,
            "user/throttle": 0.5,
            "user/mode": "user",
            "milliseconds": 1000 + index,
        }
        (path / f"record_{index}.json").write_text(json.dumps(record))
    (path / "exclude.json").write_text("[2]")
    return path


def test_reads_and_converts_v1_tubs(tmp_path):
    v1 = Tub(write_v1_tub(tmp_path / "v1"))
    records = list(v1.records(load_images=True))
    assert v1.version == 1 and [r["_index"] for r in records] == [1, 3, 4, 5, 6]
    assert records[0]["_timestamp_ms"] == 1001
    assert_image_close(records[0]["cam/image_array"], fixture.fixture_image(1))

    v2, skipped = convert_v1_to_v2(tmp_path / "v1", tmp_path / "v2")
    assert not skipped and v2.version == 2
    converted = list(v2.records(include_deleted=True, load_images=True))
    assert [r["user/angle"] for r in converted] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert [r["_timestamp_ms"] for r in converted] == [1001, 1002, 1003, 1004, 1005, 1006]
    assert v2.deleted_indexes == {1}  # v1 record 2 was excluded
    jpeg = (tmp_path / "v1" / "1_cam-image_array_.jpg").read_bytes()
    assert (v2.path / "images" / "0_cam_image_array_.jpg").read_bytes() == jpeg


def test_a_corrupt_v1_exclude_file_is_an_error_naming_it(tmp_path):
    path = write_v1_tub(tmp_path / "v1")
    (path / "exclude.json").write_text("[2, ")
    with pytest.raises(TubError, match=r"exclude\.json"):
        list(Tub(path).records())


def test_open_tubs_finds_every_tub_below_a_folder(tmp_path, donkey_tub):
    write_fixture_tub(tmp_path / "data" / "a")
    write_v1_tub(tmp_path / "data" / "old")
    shutil.copytree(donkey_tub, tmp_path / "data" / "real")
    tubs = open_tubs([tmp_path / "data"])
    assert sorted(t.path.name for t in tubs) == ["a", "old", "real"]
    with pytest.raises(TubError, match="no tubs"):
        open_tubs([tmp_path / "data" / "a" / "images"])


@pytest.mark.skipif(
    "DONKEYCAR_PYTHON" not in os.environ,
    reason="set DONKEYCAR_PYTHON to a Python with donkeycar (scripts/install_donkeycar.sh; test.sh does)",
)
def test_donkeycar_reads_our_tub_live(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    Tub(path).delete(fixture.DELETED)
    out = tmp_path / "read.json"
    subprocess.run(
        [os.environ["DONKEYCAR_PYTHON"], str(FIXTURES / "donkeycar_tool.py"), "read", str(path), str(out)],
        check=True,
        capture_output=True,
    )
    assert_donkeycar_saw_what_we_wrote(json.loads(out.read_text()), path)
