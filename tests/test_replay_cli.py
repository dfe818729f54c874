"""scripts/replay.py end to end: a real TFLite bundle, real tubs, the PNG/MP4/JSON it writes."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from car.frames import prepare_frame
from car.pilot import Pilot
from car.tub import Tub
from evaluation.tags import LABEL_WRONG, UNTAGGED, update_tags
from sim import Simulation, Track, record_tub

REPO = Path(__file__).resolve().parents[1]


def _load_script(name: str):
    return importlib.import_module(f"tubcar.commands.{name}")


replay_script = _load_script("replay")


@pytest.fixture(scope="module")
def sim_tub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay_cli") / "sim_tub"
    record_tub(Simulation(Track.from_seed(4)), path, laps=1, noise=0.3, progress=False)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, sim_tub: Path) -> Path:
    """An untrained `fast` model exported by the training code: a real pilot.tflite + model.json."""
    from training.export import export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    frames = np.stack(
        [
            prepare_frame(r["cam/image_array"], spec)
            for _, r in zip(range(32), Tub(sim_tub).records(load_images=True))
        ]
    )
    out = tmp_path_factory.mktemp("bundle") / "fast"
    export_bundle(
        build_model("fast", spec.input_shape),
        spec,
        out,
        architecture="fast",
        representative=frames,
        parity_inputs=frames,
        quantization="float32",
        log=lambda *_: None,
    )
    return out


def _run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert replay_script.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _video_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_open_loop_replays_the_held_out_block_of_a_real_tub_and_writes_its_figures(
    capsys: pytest.CaptureFixture, bundle: Path, donkey_tub: Path, tmp_path: Path
) -> None:
    metrics = _run_json(
        capsys,
        "--tub",
        str(donkey_tub),
        "--model",
        str(bundle),
        "--out",
        str(tmp_path),
        "--records",
        "800:1000",
    )

    assert metrics["frames"] == 200 and metrics["skipped"] == 0
    for key in ("steering_mse", "steering_mae", "throttle_mae", "baseline_steering_mse"):
        assert np.isfinite(metrics[key]), key
    angles = np.array([r["user/angle"] for r in Tub(donkey_tub).records() if 800 <= r["_index"] < 1000])
    assert metrics["baseline_steering_mse"] == pytest.approx(np.var(angles))
    assert {g["name"] for g in metrics["situations"]} <= {"straight", "curve left", "curve right"}
    assert sum(g["frames"] for g in metrics["situations"]) == 200
    assert sum(g["error_share"] for g in metrics["situations"]) == pytest.approx(1.0)
    for name in ("timeline", "errors"):
        image = cv2.imread(metrics["files"][name])
        assert image is not None and image.shape[0] > 300 and image.std() > 10, name
    assert _video_frames(Path(metrics["files"]["video"])) == 200


def test_closed_loop_on_a_simulator_tub_uses_its_camera_and_road(
    capsys: pytest.CaptureFixture, bundle: Path, sim_tub: Path, tmp_path: Path
) -> None:
    metrics = _run_json(
        capsys, "--closed-loop", "--tub", str(sim_tub), "--model", str(bundle), "--out", str(tmp_path)
    )

    for key in ("autonomy", "interventions", "mean_offset", "max_offset"):
        assert key in metrics
    assert 0.0 <= metrics["autonomy"] <= 1.0
    assert metrics["path"] == "sim pose" and metrics["intervention_rule"] == "road edge"
    assert metrics["camera"]["pitch_deg"] == Tub(sim_tub).metadata["camera"]["pitch_deg"]
    assert _video_frames(Path(metrics["files"]["video"])) == metrics["steps"]
    # Beside the model, the references on the same replay: they set the scale of its score.
    reference = metrics["reference"]
    assert reference["lane_follower"]["autonomy"] >= 0.9 and reference["lane_follower"]["interventions"] == 0
    assert reference["straight"]["autonomy"] <= 0.3
    assert metrics["advice"].endswith(".") and len(metrics["advice"]) > 40
    # How real the pictures are where the safety driver takes over (the lane beside the path).
    assert 0.8 < metrics["warp_coverage"]["real_floor"] <= 1.0


def test_closed_loop_camera_flags_override_the_recorded_camera_and_the_score_goes_to_the_registry(
    capsys: pytest.CaptureFixture, bundle: Path, sim_tub: Path, tmp_path: Path
) -> None:
    from training.registry import append_run, read_registry

    index = tmp_path / "index.jsonl"
    run = append_run(bundle, {"note": "the bundle under test"}, index=index)
    metrics = _run_json(
        capsys,
        "--closed-loop",
        "--tub",
        str(sim_tub),
        "--model",
        str(bundle),
        "--out",
        str(tmp_path),
        "--no-video",
        "--camera-pitch",
        "25",
        "--camera-height",
        "0.15",
        "--fill-picture",
        "--registry",
        str(index),
    )
    assert metrics["camera"]["pitch_deg"] == 25.0 and metrics["camera"]["height_m"] == 0.15
    assert set(metrics["files"]) == {"fill_picture"}  # --no-video: no MP4
    picture = cv2.imread(metrics["files"]["fill_picture"])
    assert picture.shape[1] == 3 * 2 * 160 and picture.shape[0] > 3 * 2 * 120  # 3 offsets x 3 fills
    (score,) = read_registry(index).scores
    assert (
        score["scored_run"] == run["run_id"] and score["how"] == "replay" and score["where"] == sim_tub.name
    )
    assert score["score"]["autonomy"] == metrics["autonomy"]


def test_a_broken_bundle_is_an_error_naming_the_file(
    capsys: pytest.CaptureFixture, donkey_tub: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.json").write_text("{not json")
    from tubcar import cli

    assert cli.main(["replay", "--tub", str(donkey_tub), "--model", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and str(tmp_path / "model.json") in error


def test_open_loop_reports_the_error_of_each_tag_the_studio_saved(
    capsys: pytest.CaptureFixture, bundle: Path, donkey_tub: Path, tmp_path: Path
) -> None:
    tub = tmp_path / "tub"
    shutil.copytree(donkey_tub, tub)
    update_tags(tub, lambda tags: (tags.tag([900, 901, 902], "glare"), tags.tag([950, 10], LABEL_WRONG)))
    argv = ["--tub", str(tub), "--model", str(bundle), "--out", str(tmp_path), "--records", "900:1000"]
    metrics = _run_json(capsys, *argv, "--no-video")

    by_tag = {group["name"]: group for group in metrics["tags"]}
    assert {name: group["frames"] for name, group in by_tag.items()} == {
        "glare": 3,
        LABEL_WRONG: 1,  # record 10 is outside the replayed records
        UNTAGGED: 96,
    }
    assert sum(group["error_share"] for group in by_tag.values()) == pytest.approx(1.0)
    pilot, reader = Pilot.load(bundle), Tub(tub)
    records = {r["_index"]: r for r in reader.records()}
    glare = [
        (pilot.run(reader.load_image(records[i]))[0] - records[i]["user/angle"]) ** 2 for i in (900, 901, 902)
    ]
    assert by_tag["glare"]["steering_mse"] == pytest.approx(np.mean(glare), rel=1e-4)
    assert replay_script.main([*argv, "--no-video"]) == 0
    assert "steering error by tag (tags.json" in capsys.readouterr().out
