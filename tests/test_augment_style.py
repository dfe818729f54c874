"""Style transfer: network shapes, a perceptual loss that trains, and tubs stylised with labels kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.tub import Tub, TubError, TubWriter
from tubcar import cli

pytest.importorskip("tensorflow")

from augment.style import (
    ORIGIN_KEY,
    NetworkSpec,
    StyleError,
    Stylizer,
    VggWeightsMissing,
    build_transform_net,
    load_style,
    read_card,
    read_image,
    save_style,
    stylize_tub,
)
from augment.style.loss import resolve_vgg_weights

REPO = Path(__file__).resolve().parents[1]
STYLES = REPO / "data" / "styles"
TINY = NetworkSpec(filters=(4, 8, 8), residual_blocks=1, end_kernel=3)


@pytest.fixture(scope="module")
def real_records(donkey_tub: Path) -> list[dict]:
    return list(islice(Tub(donkey_tub).records(load_images=True), 0, 600, 25))


@pytest.fixture()
def small_tub(tmp_path: Path, real_records: list[dict]) -> Path:
    """A 24-record tub of real frames written by our own writer."""
    path = tmp_path / "source"
    fields = [CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE, USER_MODE]
    with TubWriter(
        path, fields, ["image_array", "float", "float", "str"], metadata={"track": "warehouse"}
    ) as writer:
        for record in real_records:
            writer.write({key: record[key] for key in fields} | {"_timestamp_ms": record["_timestamp_ms"]})
    return path


def test_shipped_style_images_are_small_readable_images():
    images = sorted(STYLES.glob("*.png"))
    assert len(images) >= 2
    for path in images:
        assert path.stat().st_size < 100_000
        image = read_image(path)
        assert image.dtype == np.uint8 and image.shape[2] == 3 and min(image.shape[:2]) >= 128
    assert "CC0" in (STYLES / "README.md").read_text()


def test_transform_net_keeps_frame_shape_and_pixel_range():
    network = build_transform_net(TINY)
    frames = np.random.default_rng(0).uniform(0, 255, (2, 120, 160, 3)).astype(np.float32)
    styled = np.asarray(network(frames))
    assert styled.shape == (2, 120, 160, 3)
    assert styled.min() >= 0.0 and styled.max() <= 255.0
    assert build_transform_net().count_params() < 100_000  # small enough for >= 100 frames/s on a CPU


def test_stylize_tub_keeps_labels_and_records_origin(tmp_path, small_tub):
    style_image = read_image(STYLES / "waves.png")
    folder = save_style(tmp_path / "waves", build_transform_net(TINY), TINY, style_image, {"name": "waves"})
    card = read_card(folder)
    report = stylize_tub(Stylizer(folder, batch_size=7), card, small_tub, tmp_path / "styled", progress=False)

    source, styled = Tub(small_tub), Tub(tmp_path / "styled")
    assert report.frames == len(source) == len(styled) == 24 and report.skipped == 0
    origin = styled.metadata[ORIGIN_KEY]
    assert origin["tub"] == str(small_tub.resolve()) and origin["style"] == "waves"
    assert origin["style_sha256"] == card["style_sha256"] and styled.metadata["track"] == "warehouse"
    changed = 0
    for before, after in zip(source.records(load_images=True), styled.records(load_images=True)):
        for key in (USER_ANGLE, USER_THROTTLE, USER_MODE, "_timestamp_ms"):
            assert after[key] == before[key]
        assert after[CAMERA_IMAGE].shape == before[CAMERA_IMAGE].shape
        changed += np.abs(after[CAMERA_IMAGE].astype(int) - before[CAMERA_IMAGE]).mean() > 10
    assert changed == 24
    with pytest.raises(TubError, match="not empty"):
        stylize_tub(Stylizer(folder), card, small_tub, tmp_path / "styled", progress=False)


def test_saved_style_reloads_to_the_same_network(tmp_path):
    network = build_transform_net(TINY)
    folder = save_style(tmp_path / "s", network, TINY, read_image(STYLES / "mosaic.png"), {"name": "mosaic"})
    reloaded, card = load_style(folder)
    frames = np.random.default_rng(1).uniform(0, 255, (1, 60, 80, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(network(frames)), np.asarray(reloaded(frames)))
    assert NetworkSpec.from_dict(card["network"]) == TINY and (folder / "style.png").is_file()


def test_tflite_network_renders_what_keras_renders_and_is_made_for_old_folders(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    network = build_transform_net(TINY)
    folder = save_style(tmp_path / "s", network, TINY, read_image(STYLES / "mosaic.png"), {"name": "mosaic"})
    saved = folder / "transform-160x120-b32.tflite"  # written with the weights, for 160x120 tubs
    frames = np.random.default_rng(2).uniform(0, 255, (32, 120, 160, 3)).astype(np.float32)
    interpreter = Interpreter(model_path=str(saved), num_threads=2)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], frames)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    keras_styled = np.asarray(network(frames))
    assert keras_styled.std() > 1.0  # a real picture, not a constant both sides could agree on
    assert np.abs(lite - keras_styled).max() < 0.05  # 0..255 scale

    saved.unlink()  # a folder saved before TFLite files: apply makes the file and keeps it
    uint8_frames = frames[:5].astype(np.uint8)
    styled = Stylizer(folder)(uint8_frames)
    expected = np.clip(np.asarray(network(uint8_frames.astype(np.float32))) + 0.5, 0, 255).astype(np.uint8)
    assert saved.is_file() and styled.shape == (5, 120, 160, 3)
    assert np.abs(styled.astype(int) - expected).max() <= 1


def test_bad_style_folders_name_the_problem(tmp_path):
    with pytest.raises(StyleError, match="not a style folder"):
        load_style(tmp_path)
    (tmp_path / "style.json").write_text(json.dumps({"format": "tubcar-style/1", "network": TINY.to_dict()}))
    with pytest.raises(StyleError, match=r"transform\.weights\.h5"):
        load_style(tmp_path)


def test_missing_vgg_weights_explain_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(VggWeightsMissing) as err:
        resolve_vgg_weights("imagenet")
    message = str(err.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message and "--vgg-weights" in message
    with pytest.raises(VggWeightsMissing, match=r"nowhere\.h5"):
        resolve_vgg_weights(tmp_path / "nowhere.h5")
    assert resolve_vgg_weights("random") is None


def test_stylize_cli_stops_with_the_weights_error_before_any_work(tmp_path, small_tub):
    env = {**os.environ, "KERAS_HOME": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "stylize.py"),
            "train",
            "--style",
            str(STYLES / "mosaic.png"),
            "--tub",
            str(small_tub),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert "VGG16 weights not found" in result.stderr and "--vgg-weights PATH" in result.stderr
    assert not (tmp_path / "out").exists()


def run_stylize(monkeypatch, capsys, *args: str) -> str:
    """Run `tubcar stylize` in this process (one TensorFlow import for the whole test)."""
    assert cli.main(["stylize", *args]) == 0
    return capsys.readouterr().out


def test_stylize_cli_trains_a_style_whose_loss_falls_then_applies_it(
    tmp_path, small_tub, monkeypatch, capsys
):
    style_dir, styled = tmp_path / "style", tmp_path / "styled"
    printed = run_stylize(
        monkeypatch,
        capsys,
        "train",
        "--style",
        str(STYLES / "brushstrokes.png"),
        "--tub",
        str(small_tub),
        "--out",
        str(style_dir),
        "--vgg-weights",
        "random",
        "--steps",
        "12",
        "--batch-size",
        "2",
        "--learning-rate",
        "5e-3",
        "--style-size",
        "48",
        "--max-frames",
        "16",
        "--content-scale",
        "0.3",
        "--filters",
        "4",
        "8",
        "8",
        "--residual-blocks",
        "1",
    )
    assert f"wrote style 'brushstrokes' to {style_dir}" in printed
    card = json.loads((style_dir / "style.json").read_text())
    assert card["vgg_weights"] == "random" and card["training"]["steps"] == 12
    assert card["content_tubs"] == [str(small_tub)]
    totals = [step["total"] for step in card["history"]]
    assert len(totals) == 12 and all(np.isfinite(totals))
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:3])  # the perceptual loss falls

    printed = run_stylize(
        monkeypatch, capsys, "apply", "--style", str(style_dir), "--tub", str(small_tub), "--out", str(styled)
    )
    assert "wrote 24 stylised frames (brushstrokes)" in printed
    assert len(Tub(styled)) == 24 and Tub(styled).metadata[ORIGIN_KEY]["style"] == "brushstrokes"
