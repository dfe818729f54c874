"""The models registry: runs appended from real bundles, read back, listed by scripts/models.py."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from car.bundle import load_card
from training.registry import append_run, append_score, flatten, read_registry

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
        training={"data": {"tubs": ["data/tub_a"], "kept": 8}},
        metrics={
            "errors": {"dev": {"angle": {"mse": 0.05}}, "test": {"angle": {"mse": 0.07}}},
            "baseline": {"dev": {"angle": {"mse": 0.2}}, "test": {"angle": {"mse": 0.1}}},
        },
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
    assert run["metrics"]["errors"] == {"dev": {"angle": {"mse": 0.05}}, "test": {"angle": {"mse": 0.07}}}
    assert run["data"] == {"tubs": ["data/tub_a"], "kept": 8}
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


def test_models_ls_shows_data_baseline_ratios_latency_and_the_latest_closed_loop_score(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    index = tmp_path / "index.jsonl"
    runs = [append_run(bundle, {"epochs": n}, index=index) for n in (1, 2)]
    scored = append_score(bundle, {"autonomy": 0.5}, "sim", "seed 101", index)
    assert scored["scored_run"] == runs[1]["run_id"]
    append_score(bundle, {"autonomy": 1.0}, "replay", "tub_b", index)
    models = _models_script()

    assert models.main(["ls", "--index", str(index)]) == 0
    table = capsys.readouterr().out
    header, _, first, second = table.splitlines()[:4]
    assert "data" in header and "dev/mean" in header and "closed loop" in header
    assert runs[0]["run_id"] in first and runs[1]["run_id"] in second
    assert "tub_a (8 frames)" in first and "0.250" in first and "0.700" in first  # 0.05/0.2, 0.07/0.1
    assert "fast float32" in first and f"{runs[0]['latency']['median_ms']:.3f} / " in first
    assert "closed" not in first and first.count(" - ") >= 1  # the first run was never driven
    assert "autonomy 1.000 (replay, tub_b)" in second  # the latest score of the bundle's latest run
    assert "2 runs" in table

    assert models.main(["show", "--index", str(index)]) == 0  # no id: the latest run
    shown = json.loads(capsys.readouterr().out)
    assert shown["flags"] == {"epochs": 2} and shown["closed_loop"]["score"] == {"autonomy": 1.0}
    assert models.main(["show", runs[0]["run_id"][:-2], "--index", str(index)]) == 0
    assert json.loads(capsys.readouterr().out)["flags"] == {"epochs": 1}


def test_a_score_is_appended_only_for_a_registered_bundle_and_nothing_is_rewritten(
    bundle: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index.jsonl"
    assert append_score(bundle, {"autonomy": 1.0}, "sim", "seed 1", index) is None and not index.exists()
    append_run(bundle, {}, index=index)
    before = index.read_bytes()
    append_score(bundle, {"autonomy": 1.0}, "sim", "seed 1", index)
    assert index.read_bytes().startswith(before)  # append-only
    registry = read_registry(index)
    assert len(registry.runs) == 1 and len(registry.scores) == 1 and registry.problems == []


def test_sim_drive_appends_its_closed_loop_score_to_the_run_that_made_the_bundle(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tubcar import cli

    index = tmp_path / "index.jsonl"
    run = append_run(bundle, {}, index=index)
    argv = ["sim", "drive", "--model", str(bundle), "--track", "2", "--laps", "1", "--time-limit", "3"]
    assert cli.main([*argv, "--json", "--registry", str(index)]) == 0
    result = json.loads(capsys.readouterr().out)
    score = read_registry(index).latest_score(run["run_id"])
    assert score["how"] == "sim" and score["where"] == "seed 2"
    assert score["score"]["autonomy"] == result["autonomy"]
    assert score["score"]["elapsed_s"] == result["elapsed_s"] == pytest.approx(3.0, abs=0.06)


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
    said = capsys.readouterr().out
    assert f"run {run['run_id']} appended to {index}" in said
    took = re.search(
        r"took (\d+) s: set-up [\d.]+, data [\d.]+, fit [\d.]+, evaluate [\d.]+, report [\d.]+, "
        r"export [\d.]+ s",
        said,
    )
    assert took, said  # where the run's seconds went, stage by stage
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
