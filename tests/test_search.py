"""Hyperparameter search: real training trials through KerasTuner, the table, the best bundle,
resuming, and the rules that rank trials (optimising metric under a latency constraint)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from car.pilot import Pilot
from sim import Simulation, Track, record_tub
from training.registry import read_registry
from training.search import INFEASIBLE, SearchConfig, SearchSpace, score

REPO = Path(__file__).resolve().parents[1]


def _search_script():
    return importlib.import_module("tubcar.commands.search")


def test_infeasible_trials_rank_below_every_feasible_one() -> None:
    config = SearchConfig(objective="dev_mse")
    fast_but_worse = {"dev_mse": 0.2, "feasible": True}
    better_but_too_slow = {"dev_mse": 0.01, "feasible": False}
    assert score(fast_but_worse, config) < score(better_but_too_slow, config)
    assert score(better_but_too_slow, config) >= INFEASIBLE


def test_autonomy_objective_prefers_fewer_interventions_then_smaller_offsets(tmp_path: Path) -> None:
    config = SearchConfig(objective="autonomy", autonomy_tub=tmp_path)
    perfect_wobbly = {"autonomy": 1.0, "mean_offset": 0.2, "feasible": True}
    perfect_steady = {"autonomy": 1.0, "mean_offset": 0.05, "feasible": True}
    one_takeover = {"autonomy": 0.9, "mean_offset": 0.01, "feasible": True}
    assert score(perfect_steady, config) < score(perfect_wobbly, config) < score(one_takeover, config)
    with pytest.raises(ValueError, match="autonomy_tub"):
        SearchConfig(objective="autonomy")


def test_fine_space_spans_the_best_trials() -> None:
    best = [
        {"lr": 1e-3, "batch_size": 32, "dropout": 0.1, "l2": 1e-4, "width": 1.0},
        {"lr": 3e-3, "batch_size": 64, "dropout": 0.2, "l2": 1e-5, "width": 1.0},
    ]
    fine = SearchSpace().around(best)
    assert 1e-4 <= fine.lr[0] < 1e-3 and 3e-3 < fine.lr[1] <= 1e-2
    assert fine.batch_sizes == (32, 64)
    assert fine.dropout == pytest.approx((0.05, 0.25))
    assert fine.l2[0] < 1e-5 and fine.l2[1] > 1e-4
    assert fine.widths == (1.0,)


@pytest.mark.slow
def test_two_trial_autonomy_search_writes_its_table_and_best_bundle_and_resumes(tmp_path: Path) -> None:
    record_tub(Simulation(Track.from_seed(4)), tmp_path / "tub", laps=1, noise=0.3, progress=False)
    out, index = tmp_path / "search", tmp_path / "index.jsonl"
    argv = [
        "--tub",
        str(tmp_path / "tub"),
        "--out",
        str(out),
        "--trials",
        "2",
        "--epochs",
        "1",
        "--quantize",
        "float32",
        "--augment",
        "none",
        "--block-frames",
        "20",
        "--registry",
        str(index),
        "--latency-budget-ms",
        "1000",
        "--objective",
        "autonomy",
        "--autonomy-tub",
        str(tmp_path / "tub"),
    ]
    search = _search_script()

    assert search.main(argv) == 0

    with (out / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and {row["trial"] for row in rows} == {"0", "1"}
    space = SearchSpace()
    for row in rows:
        assert space.lr[0] <= float(row["lr"]) <= space.lr[1]
        assert int(float(row["batch_size"])) in space.batch_sizes
        assert space.dropout[0] <= float(row["dropout"]) <= space.dropout[1]
        assert row["feasible"] == "True" and float(row["dev_mse"]) >= 0
        assert 0.0 <= float(row["autonomy"]) <= 1.0 and float(row["mean_offset"]) >= 0  # replayed closed loop
    assert float(rows[0]["score"]) <= float(rows[1]["score"])  # best first
    assert rows[0]["lr"] != rows[1]["lr"]  # random draws, not one point twice
    pilot = Pilot.load(out / "best")  # the winner is a bundle the car can drive
    assert pilot.card.architecture == "fast"
    entry = read_registry(index).runs[-1]
    assert entry["search"]["trial"] == rows[0]["trial"]

    trained = (out / "coarse" / "trial_0" / "pilot.tflite").stat().st_mtime_ns
    assert search.main(argv) == 0  # the same search again: reloaded, nothing re-trained
    assert (out / "coarse" / "trial_0" / "pilot.tflite").stat().st_mtime_ns == trained
    assert len(list((out / "coarse").glob("trial_*"))) == 2
