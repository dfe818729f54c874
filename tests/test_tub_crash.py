"""Crash safety, measured: SIGKILL a writing process at random moments, many times."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from car.tub import Tub, TubWriter

# Writes records until killed; prints each index once `write` has returned (acknowledged).
WRITER = """
import sys, numpy as np
from car.tub import TubWriter
path, sync_interval_s = sys.argv[1], float(sys.argv[2])
writer = TubWriter(path, ["cam/image_array", "user/angle", "note"], ["image_array", "float", "str"],
                   sync_interval_s=sync_interval_s)
for message in writer.repairs:
    print("repair", message, flush=True)
frame = np.zeros((120, 160, 3), np.uint8)
while True:
    index = writer.next_index
    frame[:, :, 0] = index % 256
    angle = (index % 200) / 100 - 1
    writer.write({"cam/image_array": frame, "user/angle": angle, "note": "x" * (index % 50)})
    print("ack", index, flush=True)
"""


def run_until_killed(path: Path, rng: random.Random, sync_interval_s: float) -> tuple[list[int], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(sync_interval_s)], stdout=subprocess.PIPE, text=True
    )
    acked, repairs = [], []
    deadline = None
    for line in process.stdout:
        kind, _, rest = line.partition(" ")
        if kind == "repair":
            repairs.append(rest)
            continue
        acked.append(int(rest))
        deadline = deadline or time.monotonic() + rng.uniform(0.0, 0.25)
        if time.monotonic() >= deadline:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    process.stdout.close()
    return acked, repairs


def test_sigkill_loses_at_most_the_record_being_written(tmp_path):
    """Half the writers sync every 20 ms, so kills also land inside fsyncs and manifest renames."""
    rng = random.Random(7)
    path = tmp_path / "tub"
    acknowledged: list[int] = []
    torn_before = False
    for kill in range(20):
        acked, repairs = run_until_killed(path, rng, sync_interval_s=0.02 if kill % 2 else 1.0)
        assert acked, "writer acknowledged nothing before it was killed"
        if torn_before:
            assert any("torn last line" in message for message in repairs), repairs
        acknowledged += acked
        tub = Tub(path)
        records = {r["_index"]: r for r in tub.records(load_images=True)}
        # Only a torn last line (the record being written) may be reported.
        assert len(tub.problems) <= 1, tub.problems
        assert all("torn" in p.reason or "JSON" in p.reason for p in tub.problems)
        torn_before = bool(tub.problems)
        for index in acknowledged:
            record = records[index]
            assert record["user/angle"] == (index % 200) / 100 - 1
            assert abs(int(record["cam/image_array"][60, 80, 0]) - index % 256) <= 2
        # A gap is an index whose image was written but not its line (the write killed
        # between the two): never reused, so that image is never overwritten.
        gaps = set(range(max(records) + 1)) - set(records)
        assert len(gaps) <= kill + 1, gaps
        assert all((path / "images" / f"{gap}_cam_image_array_.jpg").exists() for gap in gaps)
    final = Tub(path)
    assert len(final.sessions) == 20


def test_data_is_fsynced_at_least_once_a_second(tmp_path, monkeypatch):
    synced: list[tuple[float, int]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((time.monotonic(), os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    writer = TubWriter(tmp_path / "tub", ["cam/image_array", "user/angle"], ["image_array", "float"])
    catalog = tmp_path / "tub" / "catalog_0.catalog"
    try:
        writer.write({"cam/image_array": np.zeros((120, 160, 3), np.uint8), "user/angle": 0.25})
        written_at, size = time.monotonic(), catalog.stat().st_size
        synced.clear()
        time.sleep(1.3)
        catalog_syncs = [t for t, st_size in synced if st_size == size]
        assert catalog_syncs and catalog_syncs[0] - written_at <= 1.1, "catalog not fsynced within a second"
        manifest = (tmp_path / "tub" / "catalog_0.catalog_manifest").read_text()
        assert f"[{size}]" in manifest.replace(" ", ""), "catalog manifest not published after the sync"
    finally:
        writer.close()
