"""Training and bundles under bad data (issue 14): a bad label never reaches the model, a NaN
loss stops training, and only a whole, checked bundle is ever published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_training import write_tub

from car.channels import USER_ANGLE

pytestmark = pytest.mark.slow  # TensorFlow

BUNDLE = ("pilot.tflite", "model.json")


def quick(epochs: int = 1):
    from training.fit import FitConfig
    from training.split import SplitConfig
    from training.train import TrainOptions

    fit = FitConfig(epochs=epochs, batch_size=16, verbose=0)
    return TrainOptions(fit=fit, split=SplitConfig(block_frames=20), quantization="float32")


def test_bad_labels_and_images_are_skipped_and_the_bundle_is_published(tmp_path):
    """Issue: one user/angle of 1e308 made every loss NaN, crashed the export and left a
    pilot.tflite + model.json behind that the car then loaded."""
    from training.train import train

    tub = write_tub(tmp_path / "tub", 120)
    catalog = tub / "catalog_0.catalog"
    lines = catalog.read_text().splitlines(keepends=True)
    lines[7] = lines[7].replace(f'"{USER_ANGLE}": ', f'"{USER_ANGLE}": 1e308, "was": ', 1)
    lines[8] = lines[8].replace(f'"{USER_ANGLE}": ', f'"{USER_ANGLE}": null, "was": ', 1)
    catalog.write_text("".join(lines))
    (tub / "images" / "9_cam_image_array_.jpg").write_bytes(b"")
    said: list[str] = []
    result = train([tub], tmp_path / "out", quick(), log=said.append)
    assert any("bad records skipped: 3" in line for line in said)
    card = json.loads((tmp_path / "out" / "model.json").read_text())
    assert card["parity"]["passed"] and card["training"]["data"]["kept"] == 117
    assert np.isfinite(result.history["loss"]).all()


def test_a_nan_loss_stops_training_at_once_and_publishes_nothing(tmp_path):
    """Labels that reach training some other way (here: handed in) are the last line of defence."""
    from training.data import LoadReport, load_frames
    from training.fit import NonFiniteLoss
    from training.train import train

    frames, _ = load_frames([write_tub(tmp_path / "tub", 120)], progress=False)
    frames.angles[3] = np.nan
    given = (frames, LoadReport(kept=len(frames)))
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at epoch 1, batch \d+; nothing was exported"):
        train(None, tmp_path / "out", quick(epochs=3), frames=given, log=lambda _: None)
    assert not any((tmp_path / "out" / name).exists() for name in BUNDLE)


def test_an_export_that_fails_leaves_the_published_bundle_alone(tmp_path):
    from training.export import ExportError, export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    model = build_model("fast", spec.input_shape)
    frames = np.random.default_rng(0).random((8, *spec.input_shape), dtype=np.float32)
    quiet = {"architecture": "fast", "representative": frames, "parity_inputs": frames, "log": lambda _: None}
    export_bundle(model, spec, tmp_path, quantization="float32", **quiet)
    published = {name: (tmp_path / name).read_bytes() for name in BUNDLE}
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    with pytest.raises(ExportError, match="outputs NaN or inf"):
        export_bundle(model, spec, tmp_path, **quiet)
    assert {name: (tmp_path / name).read_bytes() for name in BUNDLE} == published
    assert {p.name for p in tmp_path.iterdir()} == set(BUNDLE), "no temporary folder left behind"


def test_pilot_check_says_fail_for_a_corrupt_model(tmp_path):
    """Issue: `car.pilot_check` printed a traceback instead of FAIL."""
    from training.export import export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    frames = np.random.default_rng(0).random((8, *spec.input_shape), dtype=np.float32)
    export_bundle(
        build_model("fast", spec.input_shape),
        spec,
        tmp_path,
        architecture="fast",
        representative=frames,
        parity_inputs=frames,
        quantization="float32",
        log=lambda _: None,
    )
    model = tmp_path / "pilot.tflite"
    model.write_bytes(model.read_bytes()[: len(model.read_bytes()) // 2])  # a copy cut short
    result = subprocess.run(
        [sys.executable, "-m", "car.pilot_check", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and result.stdout.startswith("FAIL ")
    assert "Traceback" not in result.stdout + result.stderr


def test_the_car_refuses_a_bundle_folder_without_its_card(tmp_path):
    """A bundle is loadable only whole: pilot.tflite alone (a publish cut short) is refused."""
    from car.bundle import BundleError
    from car.pilot import Pilot

    (tmp_path / "pilot.tflite").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"model\.json: missing"):
        Pilot.load(Path(tmp_path))
