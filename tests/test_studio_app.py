"""The studio's server and services without a browser: safety of the tub, the API's guards, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pilot import constant_model, export
from test_tub import write_v1_tub

from car.tub import Tub, TubWriter
from evaluation.tags import FrameTags
from studio.app import Studio
from studio.server import TOKEN_HEADER, StudioServer

FIELDS = {
    "cam/image_array": "image_array",
    "user/angle": "float",
    "user/throttle": "float",
    "user/mode": "str",
}


def write_tub(path: Path, records: int, size: tuple[int, int] = (120, 160)) -> Path:
    rng = np.random.default_rng(0)
    with TubWriter(path, list(FIELDS), list(FIELDS.values())) as writer:
        for i in range(records):
            writer.write(
                {
                    "cam/image_array": rng.integers(0, 256, (*size, 3), dtype=np.uint8),
                    "user/angle": float(np.sin(i / 5)),
                    "user/throttle": 0.4,
                    "user/mode": "user",
                }
            )
    return path


@pytest.fixture()
def server(tmp_path):
    server = StudioServer(Studio([write_tub(tmp_path / "tub", 40)], [], tmp_path / "runs"), port=0)
    server.start()
    yield server
    server.stop()


def request(server: StudioServer, path: str, body: dict | None = None, headers: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    sent = urllib.request.Request(server.url + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_changes_need_the_pages_token_and_a_local_host_header(server):
    tub = server.studio.tubs[0].path
    status, _ = request(server, "api/tubs/0/delete", {"range": [0, 5]})
    assert status == 403 and Tub(tub).deleted_indexes == set()
    status, _ = request(server, "api/tubs/0/delete", {"range": [0, 5]}, {TOKEN_HEADER: server.token})
    assert status == 200 and Tub(tub).deleted_indexes == set(range(5))
    status, _ = request(server, "api/state", headers={"Host": "attacker.example:80"})
    assert status == 403  # a rebound DNS name pointing here cannot read the tubs
    page = request(server, "")[1].decode()
    assert server.token in page


def test_an_edit_while_a_recorder_holds_the_tub_is_refused_naming_it(server):
    tub = server.studio.tubs[0].path
    token = {TOKEN_HEADER: server.token}
    with TubWriter(tub) as recorder:
        recorder.write({"user/angle": 0.1, "user/throttle": 0.2, "user/mode": "user"})
        status, body = request(server, "api/tubs/0/delete", {"indexes": [3]}, token)
        assert status == 409 and "(record)" in json.loads(body)["error"]
        status, _ = request(
            server, "api/tubs/0/tags", {"indexes": [3], "category": "glare", "on": True}, token
        )
        assert status == 409
    assert Tub(tub).deleted_indexes == set() and not (tub / "tags.json").exists()
    status, body = request(server, "api/tubs/0/timeline")
    assert status == 200 and len(json.loads(body)["index"]) == 41  # the new record shows up


def test_two_studios_editing_one_tub_keep_every_edit(tmp_path):
    """Another process deletes and tags while this one does: nothing is lost, undo is exact."""
    tub = write_tub(tmp_path / "tub", 60)
    other = textwrap.dedent(
        """
        import sys
        from studio.app import Studio
        studio = Studio([sys.argv[1]], [], sys.argv[2])
        print("ready", flush=True)
        sys.stdin.readline()
        for index in range(0, 30, 2):
            studio.change_deleted(0, [index], delete=True)
            studio.tag(0, [index + 30], "glare", on=True)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", other, str(tub), str(tmp_path / "runs")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    studio = Studio([tub], [], tmp_path / "runs")
    assert process.stdout.readline().strip() == "ready"
    process.stdin.write("go\n")
    process.stdin.flush()
    for index in range(1, 30, 2):
        studio.change_deleted(0, [index], delete=True)
        studio.tag(0, [index + 30], "off-centre", on=True)
    assert process.wait(timeout=120) == 0
    assert Tub(tub).deleted_indexes == set(range(30))
    tags = FrameTags.read(tub)
    assert tags.indexes("glare") == set(range(30, 60, 2)) and tags.indexes("off-centre") == set(
        range(31, 60, 2)
    )
    studio.undo()  # this studio's last edit: the tag of record 59
    studio.undo()  # then its delete of record 29
    assert Tub(tub).deleted_indexes == set(range(29))
    assert FrameTags.read(tub).indexes("off-centre") == set(range(31, 58, 2))


def test_the_timeline_follows_changes_made_elsewhere(tmp_path):
    tub = write_tub(tmp_path / "tub", 30)
    studio = Studio([tub], [], tmp_path / "runs")
    assert studio.tub(0).timeline().deleted == set()
    Tub(tub).delete([4, 5])  # e.g. `tubcar tub delete` in a terminal
    assert studio.tub(0).timeline().deleted == {4, 5}
    body, _ = studio.tub(0).timeline_json()
    assert json.loads(body)["deleted"] == [4, 5]


def test_a_record_naming_a_file_outside_the_tub_is_never_served(tmp_path):
    """A tampered record ("../../secret.jpg") or an image linked out of the tub: 404, never the file."""
    tub = write_tub(tmp_path / "tub", 3)
    (tmp_path / "secret.jpg").write_bytes(b"not for the page")
    catalog = tub / "catalog_0.catalog"
    lines = catalog.read_text().splitlines()
    record = json.loads(lines[1])
    record["cam/image_array"] = "../../secret.jpg"
    catalog.write_text("\n".join([lines[0], json.dumps(record), lines[2]]) + "\n")
    linked = tub / "images" / "2_cam_image_array_.jpg"
    linked.unlink()
    linked.symlink_to(tmp_path / "secret.jpg")
    server = StudioServer(Studio([tub], [], tmp_path / "runs"), port=0)
    server.start()
    try:
        assert request(server, "api/tubs/0/image/0")[0] == 200
        status, body = request(server, "api/tubs/0/image/1")
        assert status == 404 and b"secret" not in body
        status, body = request(server, "api/tubs/0/image/2")
        assert status == 404 and b"outside the tub" in body
    finally:
        server.stop()


def test_large_frames_get_small_thumbnails_and_small_frames_are_their_own(tmp_path):
    big = Studio([write_tub(tmp_path / "big", 2, size=(480, 640))], [], tmp_path / "runs").tub(0)
    thumbnail = big.thumbnail(1)
    assert isinstance(thumbnail, bytes)
    assert cv2.imdecode(np.frombuffer(thumbnail, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
    small = Studio([write_tub(tmp_path / "small", 2)], [], tmp_path / "runs").tub(0)
    assert small.thumbnail(1) == small.image_file(1)


def test_the_studio_never_imports_tensorflow(tmp_path):
    """Predictions go through the car's TFLite pilot: opening the studio stays fast."""
    tub = write_tub(tmp_path / "tub", 12)
    bundle = export(constant_model(0.2, 0.3), tmp_path / "bundle", "float32")
    script = textwrap.dedent(
        """
        import sys
        import tubcar.commands.studio
        from studio.app import Studio
        studio = Studio([sys.argv[1]], [sys.argv[2]], sys.argv[3])
        job = studio.start_predictions(0, 0)
        job.wait(60)
        assert job.state == "done", job.error
        print(round(studio.errors(0, 0)["metrics"]["throttle_mae"], 3))
        print("tensorflow" in sys.modules)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tub), str(bundle), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0.1", "False"]  # |0.3 - 0.4| on every frame


def test_a_donkeycar_v1_tub_opens_and_its_soft_delete_is_its_exclude_json(tmp_path):
    tub = write_v1_tub(tmp_path / "v1")
    studio = Studio([tub], [], tmp_path / "runs")
    timeline = studio.tub(0).timeline()
    assert timeline.indexes.tolist() == [1, 2, 3, 4, 5, 6] and timeline.deleted == {2}
    assert studio.tub(0).image_file(5) == tub / "5_cam-image_array_.jpg"
    studio.change_deleted(0, [5], delete=True)
    assert json.loads((tub / "exclude.json").read_text()) == [2, 5]  # what Donkeycar's v1 reader skips
    studio.undo()
    assert json.loads((tub / "exclude.json").read_text()) == [2]
