"""car.pilot.Pilot: real TFLite bundles made by training.export, loaded as the car loads them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from car.bundle import BundleError
from car.frames import FrameSpec
from car.pilot import Pilot

SPEC = FrameSpec(crop_top=40, width=32, height=16)
REPO = Path(__file__).resolve().parents[1]


def constant_model(angle: float, throttle: float, kernel_value: float = 0.0):
    """image -> [angle, throttle] with the given constants (and `kernel_value` per input pixel)."""
    import keras

    inputs = keras.Input(SPEC.input_shape, name="image")
    features = keras.layers.Flatten()(inputs)
    outputs = []
    for name, value in (("angle", angle), ("throttle", throttle)):
        layer = keras.layers.Dense(1, name=name)
        outputs.append(layer(features))
        layer.set_weights(
            [
                np.full((int(np.prod(SPEC.input_shape)), 1), kernel_value, np.float32),
                np.array([value], np.float32),
            ]
        )
    return keras.Model(inputs, outputs)


def export(model, folder: Path, quantization: str, frames: np.ndarray | None = None) -> Path:
    from training.export import export_bundle

    if frames is None:
        frames = np.random.default_rng(0).random((16, *SPEC.input_shape), dtype=np.float32)
    export_bundle(
        model,
        SPEC,
        folder,
        architecture="test",
        representative=frames,
        parity_inputs=frames,
        quantization=quantization,
        log=lambda _: None,
    )
    return folder


def camera_frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def asymmetric_bundles(tmp_path_factory) -> dict[str, Path]:
    """Bundles whose angle is +0.5 and throttle -0.3, float32 and int8."""
    root = tmp_path_factory.mktemp("pilot")
    model = constant_model(0.5, -0.3)
    return {q: export(model, root / q, q) for q in ("float32", "int8")}


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_angle_and_throttle_come_out_in_their_own_places(asymmetric_bundles, quantization):
    pilot = Pilot.load(asymmetric_bundles[quantization])
    angle, throttle = pilot.run(camera_frame())
    assert angle == pytest.approx(0.5, abs=0.01)
    assert throttle == pytest.approx(-0.3, abs=0.01)
    assert pilot.card.quantization == quantization


def test_int8_bundle_has_quantised_tensors_and_is_dequantised(asymmetric_bundles):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(asymmetric_bundles["int8"] / "pilot.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert all(d["dtype"] == np.int8 for d in interpreter.get_output_details())
    pilot = Pilot.load(asymmetric_bundles["int8"])
    assert pilot.predict(np.zeros((1, *SPEC.input_shape), np.float32))["angle"] == pytest.approx(
        0.5, abs=0.01
    )


def test_outputs_are_clipped_to_the_cards_range(tmp_path):
    pilot = Pilot.load(export(constant_model(3.0, -2.0), tmp_path / "b", "float32"))
    assert pilot.run(camera_frame()) == (1.0, -1.0)


def test_non_finite_output_gives_neutral_and_is_counted(tmp_path):
    # Every pixel weighs 1e38: the sum overflows float32 to inf on any bright frame. Export checks
    # parity on dark frames, where the output is finite (it refuses a model that is never finite).
    dark = np.zeros((4, *SPEC.input_shape), np.float32)
    pilot = Pilot.load(export(constant_model(0.0, 0.2, kernel_value=1e38), tmp_path / "b", "float32", dark))
    assert pilot.run(np.full((120, 160, 3), 255, np.uint8)) == (0.0, 0.0)
    assert pilot.run(np.full((120, 160, 3), 255, np.uint8)) == (0.0, 0.0)
    assert pilot.non_finite == 2


def test_latency_stats_track_every_run(asymmetric_bundles):
    pilot = Pilot.load(asymmetric_bundles["float32"])
    assert pilot.latency_stats()["count"] == 0
    for seed in range(20):
        pilot.run(camera_frame(seed))
    stats = pilot.latency_stats()
    assert stats["count"] == 20
    assert 0 < stats["median_ms"] <= stats["p99_ms"] <= stats["max_ms"]


def test_input_shape_mismatch_names_the_file(asymmetric_bundles, tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "pilot.tflite").write_bytes((asymmetric_bundles["float32"] / "pilot.tflite").read_bytes())
    card = json.loads((asymmetric_bundles["float32"] / "model.json").read_text())
    card["input"]["width"] = 64
    (bundle / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"pilot\.tflite.*input shape \(1, 16, 32, 3\).*\(1, 16, 64, 3\)"):
        Pilot.load(bundle)


def test_missing_or_corrupt_files_are_clear_errors(asymmetric_bundles, tmp_path):
    with pytest.raises(BundleError, match=r"model\.json: missing"):
        Pilot.load(tmp_path)
    (tmp_path / "model.json").write_text((asymmetric_bundles["float32"] / "model.json").read_text())
    (tmp_path / "pilot.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(BundleError, match=r"pilot\.tflite: not a loadable TFLite model"):
        Pilot.load(tmp_path)


def test_the_car_runs_a_bundle_without_tensorflow(asymmetric_bundles):
    code = (
        "import sys, numpy as np\n"
        "from car.pilot import Pilot\n"
        f"pilot = Pilot.load({str(asymmetric_bundles['int8'])!r})\n"
        "print(pilot.run(np.zeros((120, 160, 3), np.uint8)))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
        "'the car imported TensorFlow'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    angle, throttle = eval(done.stdout.strip())
    assert angle == pytest.approx(0.5, abs=0.01) and throttle == pytest.approx(-0.3, abs=0.01)


def test_export_latency_cli_retimes_a_bundle_where_it_runs(asymmetric_bundles, tmp_path):
    import shutil

    bundle = shutil.copytree(asymmetric_bundles["int8"], tmp_path / "b")
    before = json.loads((bundle / "model.json").read_text())["latency"]
    done = subprocess.run(
        [
            sys.executable,
            "scripts/export.py",
            "latency",
            str(bundle),
            "--pi-scale-factor",
            "1",
            "--latency-budget-ms",
            "0.000001",
            "--runs",
            "50",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    after = json.loads((bundle / "model.json").read_text())["latency"]
    assert before["pi_scale_factor"] == 10.0 and after["pi_scale_factor"] == 1.0
    assert after["pi_estimate_ms"] == pytest.approx(after["p99_ms"], rel=1e-6)
    assert after["meets_budget"] is False and "LATENCY BUDGET MISSED" in done.stdout
