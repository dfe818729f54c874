"""The tub's writer lock across real processes: one writer at a time, released on a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from car.tub import Tub, TubLock, TubLockedError, TubWriter
from car.tub.lock import LOCK_FILE

HOLDER = textwrap.dedent(
    """
    import sys, time
    from car.tub import TubWriter
    writer = TubWriter(sys.argv[1], ["user/angle"], ["float"])
    writer.write({"user/angle": 0.5})
    writer.sync()
    print("holding", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture()
def recorder(tmp_path):
    """Another process recording into a tub (holding its lock) until killed."""
    path = tmp_path / "tub"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert process.stdout.readline().strip() == "holding"
    yield path, process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_a_second_writer_and_a_delete_are_refused_naming_the_holder(recorder):
    path, process = recorder
    with pytest.raises(TubLockedError, match=rf"in use by PID {process.pid} \(record\)"):
        TubWriter(path)
    with pytest.raises(TubLockedError, match=rf"PID {process.pid}"):
        TubLock(path, "edit tags", timeout_s=0.2).acquire()
    manifest_before = (path / "manifest.json").read_text()
    with pytest.raises(TubLockedError, match="cannot change deleted records"):
        Tub(path).delete([0])
    assert (path / "manifest.json").read_text() == manifest_before  # nothing was changed


def test_the_lock_is_released_when_the_holder_is_killed(recorder):
    path, process = recorder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with TubWriter(path) as writer:  # no stale lock: the kernel dropped it with the process
        assert writer.write({"user/angle": -0.5}) == 1
    assert [r["user/angle"] for r in Tub(path).records()] == [0.5, -0.5]
    assert (path / LOCK_FILE).read_text().startswith(f"{os.getpid()} record")


def test_two_processes_editing_one_tub_take_turns_and_lose_nothing(tmp_path):
    """Two editors delete disjoint records at the same time: both deletes survive."""
    path = tmp_path / "tub"
    with TubWriter(path, ["user/angle"], ["float"]) as writer:
        for i in range(200):
            writer.write({"user/angle": i / 200})
    editor = textwrap.dedent(
        """
        import sys
        from car.tub import Tub
        start = int(sys.argv[2])
        for index in range(start, 200, 2):
            Tub(sys.argv[1]).delete([index])
        """
    )
    editors = [subprocess.Popen([sys.executable, "-c", editor, str(path), str(s)]) for s in (0, 1)]
    assert [e.wait(timeout=120) for e in editors] == [0, 0]
    assert Tub(path).deleted_indexes == set(range(200))
    lines = (path / "manifest.json").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[4])["deleted_indexes"] == list(range(200))
