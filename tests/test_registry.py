"""The models registry: runs appended from real bundles, read back, listed by scripts/models.py."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from car.bundle import load_card
from training.registry import append_run, flatten, read_registry

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle from the training code's exporter, with metrics as training writes them."""
    from training.export import export_bundle
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    frames = np.random.default_rng(0).integers(0, 256, (8, *spec.input_shape), dtype=np.uint8)
    out = tmp_path_factory.mktemp("registry") / "fast"
    export_bundle(
        build_model("fast", spec.input_shape),
        spec,
        out,
        architecture="fast",
        representative=frames,
        parity_inputs=frames,
        quantization="float32",
        training={"tubs": ["data/tub_a"], "records": 8},
        metrics={"dev": {"angle_mse": 0.05}, "test": {"angle_mse": 0.07}},
        log=lambda *_: None,
    )
    return out


def _models_script():
    return importlib.import_module("tubcar.commands.models")


def test_each_run_appends_data_flags_metrics_latency_and_revision(bundle: Path, tmp_path: Path) -> None:
    index = tmp_path / "models" / "index.jsonl"
    flags = argparse.Namespace(tub=[Path("data/tub_a")], epochs=3, lr=1e-3)

    first = append_run(bundle, flags, index=index)
    second = append_run(bundle, {"epochs": 5}, index=index, extra={"note": "longer"})

    registry = read_registry(index)
    assert [run["run_id"] for run in registry.runs] == [first["run_id"], second["run_id"]]
    assert registry.problems == []
    run = registry.runs[0]
    card = load_card(bundle)
    assert run["flags"] == {"tub": ["data/tub_a"], "epochs": 3, "lr": 1e-3}
    assert run["metrics"] == {"dev": {"angle_mse": 0.05}, "test": {"angle_mse": 0.07}}
    assert run["data"] == ["data/tub_a"]
    assert run["latency"]["median_ms"] == pytest.approx(card.latency.median_ms)
    assert run["git_revision"] == card.git_revision
    assert run["bundle"] == str(bundle.resolve())
    assert registry.runs[1]["note"] == "longer"
    assert len(index.read_text().splitlines()) == 2  # one JSON line per run


def test_a_torn_line_is_reported_and_the_other_runs_survive(bundle: Path, tmp_path: Path) -> None:
    index = tmp_path / "index.jsonl"
    append_run(bundle, {}, index=index)
    with index.open("a") as handle:
        handle.write('{"run_id": "torn", "metr')  # a crash mid-write
    registry = read_registry(index)
    assert len(registry.runs) == 1
    assert len(registry.problems) == 1 and f"{index}:2" in registry.problems[0]
    appended = append_run(bundle, {}, index=index)  # the next run starts a line of its own
    assert [run["run_id"] for run in read_registry(index).runs][-1] == appended["run_id"]
    assert len(read_registry(index).runs) == 2


def test_models_ls_prints_one_row_per_run_and_show_prints_one_run(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    index = tmp_path / "index.jsonl"
    runs = [append_run(bundle, {"epochs": n}, index=index) for n in (1, 2)]
    models = _models_script()

    assert models.main(["ls", "--index", str(index)]) == 0
    table = capsys.readouterr().out
    assert "dev.angle_mse" in table and "latency_ms" in table
    assert all(run["run_id"] in table for run in runs)
    assert "2 runs" in table

    assert models.main(["show", runs[1]["run_id"], "--index", str(index)]) == 0
    assert json.loads(capsys.readouterr().out)["flags"] == {"epochs": 2}
    assert models.main(["show", "no-such-run", "--index", str(index)]) == 1


def _train_script():
    return importlib.import_module("tubcar.commands.train")


def test_train_script_registers_its_run(
    donkey_tub: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """scripts/train.py on 160 real frames (one epoch, under --distribute mirrored) appends its run."""
    from car.pilot import Pilot
    from training.export import git_revision

    index, out = tmp_path / "models" / "index.jsonl", tmp_path / "run"
    _train_script().main(
        [
            "--tub",
            str(donkey_tub),
            "--records",
            "0:160",
            "--block-frames",
            "20",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--verbose",
            "0",
            "--augment",
            "none",
            "--quantize",
            "float32",
            "--distribute",
            "mirrored",
            "--registry",
            str(index),
        ]
    )

    registry = read_registry(index)
    assert registry.problems == [] and len(registry.runs) == 1
    run = registry.runs[0]
    assert f"run {run['run_id']} appended to {index}" in capsys.readouterr().out
    card = load_card(out)
    assert run["bundle"] == str(out.resolve()) and run["architecture"] == "fast"
    assert run["flags"]["epochs"] == 1 and run["flags"]["distribute"] == "mirrored"
    assert run["flags"]["tub"] == [str(donkey_tub)] and run["flags"]["registry"] == str(index)
    assert run["training"]["distribute"] == "mirrored" and run["training"]["epochs_run"] == 1
    assert run["data"]["kept"] == 160
    assert run["metrics"]["errors"]["dev"]["angle"]["mse"] == pytest.approx(
        card.metrics["errors"]["dev"]["angle"]["mse"]
    )
    assert run["git_revision"] == card.git_revision == git_revision() != ""
    angle, throttle = Pilot.load(out).run(np.zeros((120, 160, 3), np.uint8))  # the registered bundle drives
    assert np.isfinite([angle, throttle]).all()


def test_flatten_names_nested_metrics_with_dots() -> None:
    assert flatten({"dev": {"angle": {"mse": 1.0}}, "epochs": 3}) == {"dev.angle.mse": 1.0, "epochs": 3}
