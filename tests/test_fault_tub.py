"""Fault injection on tubs (issue 14): tubs that never overwrite, never lie, and readers that
survive anything a failing SD card or a hostile editor leaves behind.

The damaged tubs hold hostile files (a symlink to /dev/zero, a FIFO, a 17 MB "image",
names pointing outside the tub): they are read only in a child process whose memory and
time are bounded (`bounded`), so a reader that fell for one fails the test instead of
hanging or swapping the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import donkeycar_tool as fixture
import numpy as np
import pytest
from test_tub import write_fixture_tub

from car import channels as ch
from car.tub import Tub, TubError, TubLockedError, TubWriter
from car.tub.inspect import check
from car.tub.manifest import MANIFEST

MEMORY_LIMIT = 3 << 30  # bytes of address space for a child reading a hostile tub
TIME_LIMIT_S = 120


def bounded(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run `script` in a child process with bounded memory and CPU time (and a timeout)."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CPU, (TIME_LIMIT_S, TIME_LIMIT_S))

    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
        preexec_fn=limits,
    )


def image_hashes(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (path / "images").iterdir()}


def rewrite_lines(catalog: Path, change) -> None:
    lines = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps(record) + "\n" for record in change(lines)))


# ------------------------------------------------------------------ never overwrite


def test_a_lost_manifest_is_rebuilt_before_anything_is_written(tmp_path):
    """Issue: recording into a tub without manifest.json started again at index 0."""
    path = write_fixture_tub(tmp_path / "tub")
    before = image_hashes(path)
    sessions_before = Tub(path).sessions
    (path / MANIFEST).unlink()
    with TubWriter(path, fixture.INPUTS, fixture.TYPES) as writer:
        assert any("was missing; rebuilt from the catalogs" in m for m in writer.repairs)
        assert [writer.write(fixture.fixture_record(i)) for i in range(3)] == [30, 31, 32]
        assert writer.session_id not in sessions_before
    after = image_hashes(path)
    assert {name: after[name] for name in before} == before, "no recorded image was overwritten"
    assert [r["_index"] for r in Tub(path).records()] == list(range(33))
    (path / MANIFEST).unlink()
    fewer = (fixture.INPUTS[:4], fixture.TYPES[:4])
    with pytest.raises(TubError, match=r"records hold fields \['imu/acl', 'lap', 'on_track'\]"):
        TubWriter(path, *fewer)
    assert image_hashes(path) == after


def test_the_next_index_is_past_the_highest_ever_used_not_the_last_line(tmp_path):
    """Issue: after lines got out of order the next index came from the last line, and
    recording overwrote 208 images."""
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    rewrite_lines(path / "catalog_0.catalog", lambda lines: [*lines[20:], *lines[:20]])  # last line: 19
    manifest = (path / MANIFEST).read_text().replace('"current_index": 30', '"current_index": 20')
    (path / MANIFEST).write_text(manifest)  # as a crash before the manifest was published leaves it
    before = image_hashes(path)
    with TubWriter(path) as writer:
        assert writer.write(fixture.fixture_record(0)) == 30
    after = image_hashes(path)
    assert {name: after[name] for name in before} == before
    assert sorted(r["_index"] for r in Tub(path).records()) == list(range(31))


def test_an_image_is_never_overwritten(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    writer = TubWriter(path)
    stray = path / "images" / "30_cam_image_array_.jpg"
    stray.write_bytes(b"somebody else's picture")  # appears after the writer opened
    with pytest.raises(TubError, match="refusing to overwrite a recorded image"):
        writer.write(fixture.fixture_record(0))
    with pytest.raises(TubError, match="writer stopped after an error"):
        writer.write(fixture.fixture_record(1))
    writer.close()
    assert stray.read_bytes() == b"somebody else's picture"
    with TubWriter(path) as writer:  # the stray file's index counts as used
        assert writer.write(fixture.fixture_record(0)) == 31


def test_a_second_recorder_is_refused_and_the_first_records_on(tmp_path):
    """Issue: two recorders on one tub both ran and wrote 161 indexes twice."""
    from car.parts import Recorder

    frame = np.full((120, 160, 3), 90, np.uint8)
    first, second = (Recorder(tmp_path, tub_path=tmp_path / "tub") for _ in range(2))
    first.run(True, ch.MODE_USER, "", 0.2, frame, 0.1, 0.2, ch.MODE_USER, 0.1, 0.4)
    deadline = time.monotonic() + 10
    while first.writer is None and time.monotonic() < deadline:
        time.sleep(0.01)
    second.run(True, ch.MODE_USER, "", 0.2, frame, 0.1, 0.2, ch.MODE_USER, 0.1, 0.4)
    second.shutdown()
    assert isinstance(second.error, TubLockedError)
    assert f"in use by PID {os.getpid()} (record)" in str(second.error)
    second.run(
        True, ch.MODE_USER, "", 0.2, frame, 0.1, 0.2, ch.MODE_USER, 0.1, 0.4
    )  # never raises on the car
    first.run(True, ch.MODE_USER, "", 0.2, frame, 0.3, 0.2, ch.MODE_USER, 0.3, 0.4)
    first.shutdown()
    assert first.error is None and first.records == 2
    assert [r[ch.USER_ANGLE] for r in Tub(tmp_path / "tub").records()] == [0.1, 0.3]


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_files_are_created_with_the_process_umask(tmp_path, umask):
    """Issue: manifests were written 0600, so another user could not read a shared tub."""
    old = os.umask(umask)
    try:
        path = write_fixture_tub(tmp_path / "tub")
        Tub(path).delete([3])
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    files = [p for p in path.rglob("*") if p.is_file()]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(expected)}, files


# ------------------------------------------------------------------ every bad record counted

BAD_RECORDS = {  # index -> what is wrong, as the reader says it
    2: "image is empty (0 bytes)",
    3: "without the JPEG end marker: truncated",
    4: "not a decodable JPEG",
    5: "is 320x240",
    6: "is missing",
    7: "is a symlink, not followed",
    8: "not a regular file",
    9: "points outside the tub",
    10: "points outside the tub",
    11: "user/angle is null",
    12: "user/angle is 1e+308, outside [-1, 1]",
    13: "user/throttle is 1.5, outside [-1, 1]",
    14: "user/angle is nan",
    15: "not valid JSON",
    17: "duplicate _index 16",
    18: "larger than 16777216 bytes",
}


def damage_records(path: Path) -> None:
    """Every way one record can go bad, one record each (see BAD_RECORDS)."""
    images = path / "images"

    def image(index: int) -> Path:
        return images / f"{index}_cam_image_array_.jpg"

    image(2).write_bytes(b"")  # a power cut's leftover (Donkeycar issue #952)
    image(3).write_bytes(image(3).read_bytes()[:1500])
    image(4).write_bytes(b"GIF89a" + os.urandom(600) + b"\xff\xd9")
    image(5).write_bytes(cv2.imencode(".jpg", np.zeros((240, 320, 3), np.uint8))[1].tobytes())
    image(6).unlink()
    image(7).unlink()
    image(7).symlink_to("/dev/zero")
    image(8).unlink()
    os.mkfifo(image(8))
    (path.parent / "outside.jpg").write_bytes(image(0).read_bytes())  # a naive reader would succeed
    with open(image(18), "r+b") as big:
        big.truncate(17 << 20)

    def edit(lines: list[dict]) -> list[dict]:
        lines[9]["cam/image_array"] = "../../outside.jpg"
        lines[10]["cam/image_array"] = "/etc/passwd"
        lines[11]["user/angle"] = None
        lines[12]["user/angle"] = 1e308
        lines[13]["user/throttle"] = 1.5
        lines[17]["_index"] = 16
        return lines

    catalog = path / "catalog_0.catalog"
    rewrite_lines(catalog, edit)
    lines = catalog.read_text().splitlines(keepends=True)
    lines[14] = lines[14].replace('"user/angle": ', '"user/angle": NaN, "was": ', 1)
    lines[15] = '{"_index": 15, "cam/ima\n'
    catalog.write_text("".join(lines))


EVERY_READER = textwrap.dedent(
    """
    import json, sys
    from car.camera import TubCamera
    from car.tub import Tub
    from car.tub.inspect import check, summarise
    from evaluation.replay import camera_for_tub, closed_loop, open_loop
    from evaluation.scoring import camera_pilot
    from training.data import RecordFilter, load_frames

    path = sys.argv[1]
    counts = {}
    tub = Tub(path)
    counts["records"] = [len(list(tub.records(load_images=True))), len(tub.problems)]
    every_mode = RecordFilter(modes=("user", "local_angle", "local"))
    frames, report = load_frames([path], every_mode, progress=False)
    counts["training"] = [len(frames), len(report.bad)]
    pilot = camera_pilot(lambda frame: (0.0, 0.3))
    replayed = open_loop(Tub(path), pilot)
    counts["open_loop"] = [replayed.frames, len(replayed.problems)]
    tub = Tub(path)
    closed = closed_loop(tub, pilot, camera_for_tub(tub))
    counts["closed_loop"] = [len(closed.steps), len(tub.problems) + len(closed.problems)]
    camera = TubCamera(path)
    for _ in range(60):  # 30 records: then the last frame stays
        camera.run()
    counts["tub_camera"] = [camera.frames, len(camera.tub.problems)]
    counts["info"] = [summarise([Tub(path)])["records"], len(summarise([Tub(path)])["problems"])]
    result = check(path)
    counts["check"] = [result.good_records, len(result.problems)]
    print(json.dumps(counts))
    """
)


def test_every_reader_skips_and_counts_every_bad_record(tmp_path):
    """Issue: a 0-byte JPEG crashed check, repair, training and replay with a cv2 assertion;
    a null or 1e308 angle passed check and made every loss NaN."""
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    damage_records(path)
    result = bounded(EVERY_READER, str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    counts = json.loads(result.stdout)
    bad, good = len(BAD_RECORDS), 30 - len(BAD_RECORDS)
    for reader in ("records", "training", "open_loop", "check"):
        assert counts[reader] == [good, bad], reader
    assert counts["tub_camera"] == [good, bad]
    assert counts["info"][1] >= 9  # without decoding images: names, labels, lines, missing files
    steps, skipped = counts["closed_loop"]  # bad labels found by the reader, bad frames where driven
    assert steps > 0 and skipped > 0


TUB_CHECK = "import sys; from tubcar.cli import main; sys.exit(main(['tub', 'check', *sys.argv[1:]]))"


def test_check_names_each_bad_record_and_repair_soft_deletes_them(tmp_path):
    path = write_fixture_tub(tmp_path / "tub", max_catalog_len=1000)
    damage_records(path)
    checked = bounded(TUB_CHECK, str(path))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    for index, reason in BAD_RECORDS.items():
        line = f"catalog_0.catalog:{index + 1}:"
        assert any(line in out and reason in out for out in checked.stdout.splitlines()), (index, reason)
    repaired = bounded(TUB_CHECK, str(path), "--repair")
    assert repaired.returncode == 0, repaired.stderr
    # line 16 is not a record at all; of two records with index 16 neither can be called the bad one
    assert Tub(path).deleted_indexes == set(BAD_RECORDS) - {15, 17}


# ------------------------------------------------------------------ every inconsistency found


def damage_layout(path: Path) -> list[tuple[str, str]]:
    """Layout damage that loses no record; returns what `tub check` must say about each."""
    manifest = (path / MANIFEST).read_text().splitlines()
    line5 = json.loads(manifest[4])
    line5["current_index"] = 12
    line5["deleted_indexes"] = [4, 500]
    line5["paths"] = [*line5["paths"], "../../etc/passwd", "catalog_7.catalog"]
    manifest[4] = json.dumps(line5)
    (path / MANIFEST).write_text("\n".join(manifest) + "\n")
    catalog_manifest = path / "catalog_1.catalog_manifest"
    contents = json.loads(catalog_manifest.read_text())
    contents["line_lengths"][0] += 7
    catalog_manifest.write_text(json.dumps(contents))
    (path / "catalog_2.catalog_manifest").unlink()
    (path / "images" / "77_cam_image_array_.jpg").write_bytes(b"stray")
    (path / "catalog_9.catalog").symlink_to(path / "catalog_0.catalog")

    def edit(lines: list[dict]) -> list[dict]:
        for number, line in enumerate(lines):  # 1 ms apart: the writer may give two records the same ms
            line["_timestamp_ms"] -= len(lines) - number
        lines[3]["cam/image_array"] = lines[2]["cam/image_array"]
        lines[5]["_session_id"] = "99-01-01_7"
        lines[6]["_timestamp_ms"] = 0
        return [lines[1], lines[0], *lines[2:]]

    rewrite_lines(path / "catalog_0.catalog", edit)
    return [
        ("current_index is 12 but records go up to 29", "manifest.json:5"),
        ("deleted_indexes names records that do not exist: 500", "manifest.json:5"),
        ("paths names '../../etc/passwd', not a catalog of this tub", "manifest.json:5"),
        ("paths names catalog_7.catalog, which is missing", "manifest.json:5"),
        ("line_lengths (12 lines, ", "catalog_1.catalog_manifest"),
        ("is missing (`tubcar tub check --repair` rebuilds it)", "catalog_2.catalog_manifest"),
        ("2 files no record names", "images"),  # 3's image, now named by no record, and the stray
        ("is not a regular file (a symlink?)", "catalog_9.catalog"),
        ("_index 0 comes after 1: out of order", "catalog_0.catalog:2"),
        ("image 2_cam_image_array_.jpg is also the image of record 2", "catalog_0.catalog:4"),
        ("session 99-01-01_7 is not among manifest.json's sessions", "catalog_0.catalog:6"),
        ("sessions interleaved", "catalog_0.catalog:7"),
        ("_timestamp_ms goes back in time", "catalog_0.catalog:7:"),
        ("start_index 0 but the catalog starts at 1", "catalog_0.catalog_manifest"),
        ("disagree with the catalog (12 lines, ", "catalog_0.catalog_manifest"),  # the shorter timestamp
        ("_timestamp_ms goes back in time", "catalog_0.catalog:2:"),  # the swapped lines
    ]


def test_check_finds_every_inconsistency_of_the_layout(tmp_path):
    """Issue: `tub.py check` said "0 bad" for a tub that recording had overwritten."""
    path = write_fixture_tub(tmp_path / "tub")  # three catalogs of 12, 12 and 6 records
    assert not check(path).inconsistencies
    expected = damage_layout(path)
    found = [str(problem) for problem in check(path).inconsistencies]
    for message, where in expected:
        assert any(message in line and where in line for line in found), (message, found)
    assert len(found) == len(expected), found


def test_a_tub_whose_manifest_is_unreadable_is_repaired_without_losing_a_record(tmp_path):
    path = write_fixture_tub(tmp_path / "tub")
    (path / MANIFEST).write_bytes(b"\xc9\x00" * 40)  # not even UTF-8 (found by `bench faults`)
    with pytest.raises(TubError, match=r"manifest\.json"):
        Tub(path)
    result = check(path, repair=True)
    assert any("was unreadable" in message for message in result.repairs)
    assert [p.name for p in path.glob("manifest.json.bad-*")], "the damaged manifest is kept"
    assert result.good_records == 30 and not result.problems
    with TubWriter(path) as writer:
        assert writer.write(fixture.fixture_record(0)) == 30


# ------------------------------------------------------------------ the randomized campaign


def test_a_randomized_fault_campaign_loses_no_acknowledged_record():
    """`tubcar bench faults`, short: kill -9 mid-write, corrupt bytes, truncated and deleted files."""
    import argparse

    from benchmarks import faults

    result = faults.run(argparse.Namespace(rounds=10, seed=1))
    assert all(result["by_kind"].values()), result["by_kind"]
    assert result["injected"] == result["survived"] == 10, result["failures"]
    assert result["records_lost"] == 0, result["lost_indexes"]
    assert result["recorders_killed_while_writing"] == result["by_kind"]["kill"]
