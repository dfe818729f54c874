"""The acceptance experiments run through the library: record, train, drive, score (short runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from car.tub import Tub
from experiments.acceptance import SimPlan, real_acceptance, sim_acceptance
from training.fit import FitConfig
from training.train import TrainOptions

QUICK = TrainOptions(fit=FitConfig(epochs=1, verbose=0), augment_workers=0)


@pytest.mark.slow
def test_sim_acceptance_records_trains_and_drives_unseen_tracks(tmp_path: Path) -> None:
    plan = SimPlan(train_seeds=(1,), train_laps=2, test_seeds=(101, 102), drive_laps=1)
    summary = sim_acceptance(tmp_path, ["fast"], QUICK, plan, log=lambda _: None)

    tub = Tub(tmp_path / "tubs" / "track1")  # the expert's laps, recorded by sim.record_tub
    assert tub.metadata["controller"]["kind"] == "sim expert"
    assert tub.metadata["controller"]["steering_noise"] == plan.noise
    assert len(tub) > 300 and summary["train_laps"] == 2
    model = summary["models"]["fast"]
    assert set(model["drives"]) == {"101", "102"}  # each unseen seed driven by the exported bundle
    for drive in model["drives"].values():
        assert 0.0 <= drive["autonomy"] <= 1.0 and drive["laps"] <= 1 and drive["mean_cte"] >= 0
    assert model["passed"] == all(
        d["completed"] and d["interventions"] == 0 for d in model["drives"].values()
    )
    assert "latency" not in summary  # the latency ratio needs all three architectures
    assert json.loads((tmp_path / "acceptance.json").read_text()) == summary


@pytest.mark.slow
def test_real_acceptance_tests_on_the_untouched_last_block(donkey_tub: Path, tmp_path: Path) -> None:
    summary = real_acceptance(donkey_tub, tmp_path, QUICK, log=lambda _: None)
    assert summary["test_frames"] == 200 and summary["split_sizes"]["test"] == 0
    assert sum(summary["split_sizes"].values()) <= 800  # dev and train come from records 0-799
    assert summary["ratio"] == pytest.approx(summary["test_steering_mse"] / summary["mean_baseline_mse"])
    assert summary["passed"] == (summary["ratio"] <= 0.5)
    assert json.loads((tmp_path / "acceptance_real.json").read_text()) == summary
